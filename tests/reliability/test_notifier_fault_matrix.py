"""The fault matrix's notifier rows: SES, SNS and DynamoDB failing around a send, and what the customer gets.

Every row ends in the same books: at most one message per (episode, number) reached the provider, and a message that
did not is still due, or given up with a reason that is counted. Faults come from botocore hooks on the clients the
notifier under test built; the code under test is never replaced.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ReadTimeoutError

from connection_repair.notify.outcome import DeliveryFailed
from connection_repair.notify.policy import Deferred
from connection_repair.notify.records import Message
from connection_repair.notify.service import RATE_RETRY
from connection_repair.preferences.model import Channel
from local.aws_resources import LocalResources
from tests.aws_faults import AwsFault, aws_error, scan
from tests.notifier_support import SENDER, T0, Clock, NotifierRig, attention, build_notifier, sent_emails, sent_sms

EMAIL = "ada@example.com"
PHONE = "+14155550123"
FIRST_SEND = T0 + timedelta(minutes=6)


def claims(table: str) -> dict[str, str]:
    """Message claim -> its state."""
    return {i["sk"]["S"]: i["state"]["S"] for i in scan(table) if i["sk"]["S"].startswith("NOTIFY#MSG#")}


def sent() -> int:
    return len(sent_emails()) + len(sent_sms())


def rig_on(aws: LocalResources, channel: Channel) -> NotifierRig:
    rig = build_notifier(aws.table_name, Clock(FIRST_SEND))
    rig.preferences(email=EMAIL, phone=PHONE, channels=(channel,))
    return rig


def client_of(rig: NotifierRig, channel: Channel) -> Any:
    return rig.channels[channel]._client  # type: ignore[attr-defined]


SENDS = {"SES": (Channel.EMAIL, "sesv2.SendEmail"), "SNS": (Channel.SMS, "sns.Publish")}

# --- Refused for now: released, retried, sent once ------------------------------------------------------------------

NOTIFY_FAULTS = {
    "SES throttled": (Channel.EMAIL, "sesv2.SendEmail", "TooManyRequestsException", 429),
    "SES sending quota": (Channel.EMAIL, "sesv2.SendEmail", "LimitExceededException", 400),
    "SNS throttled": (Channel.SMS, "sns.Publish", "Throttled", 400),
}


@pytest.mark.parametrize("fault", NOTIFY_FAULTS.values(), ids=NOTIFY_FAULTS.keys())
def test_a_throttled_send_is_deferred_not_failed_and_the_retry_sends_exactly_one_message(
    aws: LocalResources, fault: tuple[Channel, str, str, int]
) -> None:
    channel, operation, code, status = fault
    # Given a customer reachable on the faulty channel and a connection that broke, its first message due
    rig = rig_on(aws, channel)
    event = attention(rig.connection(), at=T0)
    injected = AwsFault(client_of(rig, channel), operation, aws_error(code, status))

    # When the provider throttles the send (the account's rate or quota, not the message)
    outcome = rig.notifier.on_needs_attention(event)

    # Then nothing went out and nothing failed: claim and slot released, the message due again shortly, no attempt used
    assert injected.injected == 1
    assert outcome.failures == 0
    assert outcome.deferred[Deferred.THROTTLED] == 1
    assert claims(aws.table_name) == {}
    notice = rig.episode()
    assert notice is not None
    assert (notice.next_message, notice.due_at, notice.delivery_attempts) == (0, FIRST_SEND + RATE_RETRY, 0)
    assert sent() == 0

    # When the event is retried before then, nothing is due; once due, the sweep sends it; then the event again
    rig.notifier.on_needs_attention(event)
    assert sent() == 0
    rig.clock.at(FIRST_SEND + RATE_RETRY)
    rig.notifier.sweep()
    rig.notifier.on_needs_attention(event)

    # Then exactly one message went out, on that channel
    assert len(sent_emails() if channel == Channel.EMAIL else sent_sms()) == sent() == 1
    assert list(claims(aws.table_name).values()) == ["SENT"]


# --- The provider took it, its answer was lost: maybe sent, never sent again ----------------------------------------


class AnswerLost:
    """The provider accepts the request, and its answer never arrives (a read timeout after the send)."""

    def __init__(self, client: Any, operation: str) -> None:
        self.raised = 0
        client.meta.events.register(f"after-call.{operation}", self)

    def __call__(self, **_: Any) -> None:
        if self.raised == 0:
            self.raised += 1
            raise ReadTimeoutError(endpoint_url="https://provider.invalid")


@pytest.mark.parametrize("send", SENDS.values(), ids=SENDS.keys())
def test_a_send_whose_answer_is_lost_counts_as_maybe_sent_and_is_never_sent_again(
    aws: LocalResources, send: tuple[Channel, str]
) -> None:
    channel, operation = send
    rig = rig_on(aws, channel)
    event = attention(rig.connection(), at=T0)
    lost = AnswerLost(client_of(rig, channel), operation)

    # When the provider takes the message and its answer is lost
    outcome = rig.notifier.on_needs_attention(event)

    # Then nothing is released: the message counts as maybe sent (counted), the episode moves on to its reminder
    assert (lost.raised, sent()) == (1, 1)
    assert (outcome.messages_sent, outcome.suppressed["UNCERTAIN"], outcome.failures) == (0, 1, 0)
    assert outcome.channel_failures == 1  # the channel's answer was lost: counted as its failure
    assert list(claims(aws.table_name).values()) == ["UNCERTAIN"]
    notice = rig.episode()
    assert notice is not None
    assert notice.next_message == 1
    assert notice.due_at is not None
    assert notice.due_at > FIRST_SEND

    # And no retry of the event and no sweep sends it again
    rig.notifier.on_needs_attention(event)
    rig.clock.at(FIRST_SEND + timedelta(minutes=20))
    rig.notifier.sweep()
    assert sent() == 1


def test_the_notifiers_sends_are_made_once_the_sdk_never_repeats_them(notifier_env: LocalResources) -> None:
    from connection_repair.wiring.notifier import notifier

    channels = notifier()._channels
    message = Message(subject="s", text="t", html="<p>h</p>", sms="s")
    for channel, address in ((Channel.EMAIL, EMAIL), (Channel.SMS, PHONE)):
        client = channels[channel]._client  # type: ignore[attr-defined]
        assert client.meta.config.retries["total_max_attempts"] == 1
        unavailable = Unavailable(client)
        # A 5xx: the provider may have taken it, so it is not a refusal (nor repeated): its outcome is unknown
        with pytest.raises(ClientError, match=r"\(ServiceUnavailable\)"):
            channels[channel].send(address, message, customer="customer-1")
        assert unavailable.attempts == 1, f"{channel}: {unavailable.attempts} attempts"


class Unavailable:
    """Every request on ``client`` answered 503 at the HTTP level, where botocore's retries see it."""

    def __init__(self, client: Any) -> None:
        self.attempts = 0
        client.meta.events.register_first(f"before-send.{client.meta.service_model.service_id.hyphenize()}", self)

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.attempts += 1
        body = b'{"__type": "ServiceUnavailable", "message": "Service Unavailable"}'
        if "sns" in request.url:
            body = b"<ErrorResponse><Error><Code>ServiceUnavailable</Code><Message>x</Message></Error></ErrorResponse>"
        return AWSResponse(request.url, 503, {}, _Body(body))


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


# --- Refused for good: the message is given up, the contact never used again ----------------------------------------

PERMANENT = {
    "SES sandbox: recipient not verified": (
        Channel.EMAIL,
        "sesv2.SendEmail",
        "MessageRejected",
        f"Email address is not verified. The following identities failed the check in region US-EAST-1: {EMAIL}",
    ),
    "SNS invalid number": (
        Channel.SMS,
        "sns.Publish",
        "InvalidParameter",
        f"Invalid parameter: PhoneNumber Reason: {PHONE} is not valid to publish to",
    ),
}


@pytest.mark.parametrize("fault", PERMANENT.values(), ids=PERMANENT.keys())
def test_a_permanent_rejection_gives_the_message_up_and_marks_the_contact_unusable(
    aws: LocalResources, fault: tuple[Channel, str, str, str]
) -> None:
    channel, operation, code, text = fault
    rig = rig_on(aws, channel)
    event = attention(rig.connection(), at=T0)
    injected = AwsFault(client_of(rig, channel), operation, _with_message(code, text), times=100)

    # When the provider rejects the message for this address
    outcome = rig.notifier.on_needs_attention(event)

    # Then it is not retried: given up with a reason, the contact marked, the customer's send slot free
    assert injected.injected == 1
    assert (outcome.failures, outcome.suppressed["REFUSED"]) == (0, 1)
    assert list(claims(aws.table_name).values()) == ["REFUSED"]
    address = EMAIL if channel == Channel.EMAIL else PHONE
    state = rig.store.get_customer_state("customer-1")
    assert (state.unusable, state.last_sent_at) == ({channel: address}, None)
    episode = rig.episode()
    assert episode is not None
    assert (episode.next_message, episode.messages_sent) == (1, 0)  # moved on, nothing counted as sent

    # And the reminder is not even tried on that contact
    rig.clock.at(T0 + timedelta(days=1, hours=1))
    later = rig.notifier.sweep()
    assert (later.suppressed["CONTACT_UNUSABLE"], injected.injected, sent()) == (1, 1, 0)

    # Until the customer gives a new one: the last reminder goes to it
    rig.preferences(email="ada@new.example.com", phone="+14155550142", channels=(channel,))
    rig.clock.at(T0 + timedelta(days=3, hours=1))
    injected.times = 0
    assert rig.notifier.sweep().messages_sent == 1
    assert sent() == 1


def _with_message(code: str, text: str) -> Any:
    return lambda _: (400, {"Error": {"Code": code, "Message": text}, "ResponseMetadata": {}})


def test_a_rejection_of_our_own_sender_is_the_deployments_problem_not_the_customers(aws: LocalResources) -> None:
    rig = rig_on(aws, Channel.EMAIL)
    event = attention(rig.connection(), at=T0)
    # (in the sandbox SES names every identity that failed: our sender, and the recipient too)
    text = f"Email address is not verified. The following identities failed the check: {SENDER}, {EMAIL}"
    injected = AwsFault(client_of(rig, Channel.EMAIL), "sesv2.SendEmail", _with_message("MessageRejected", text))

    # When SES rejects the message because our sender is not verified
    with pytest.raises(DeliveryFailed):
        rig.notifier.on_needs_attention(event)

    # Then the customer's contact stays usable and the message is retried (and sent once the sender works)
    assert injected.injected == 1
    assert rig.store.get_customer_state("customer-1").unusable == {}
    rig.notifier.sweep()
    assert sent() == 1


# --- DynamoDB's answer to a committed claim is lost: the SDK's retry finds its own commit ---------------------------


class CommitAnswerLost:
    """DynamoDB commits the transaction and its answer is lost; botocore retries the same request. DynamoDB answers
    a retry with the same ``ClientRequestToken`` (within 10 minutes) as it answered the commit: that is emulated
    here, since moto does not keep tokens."""

    def __init__(self, client: Any, operation: str = "TransactWriteItems") -> None:
        self.lost = 0
        self.tokens: set[str] = set()
        self.answered_by_token = 0
        self._plain = boto3.client("dynamodb")
        client.meta.events.register_first(f"before-send.dynamodb.{operation}", self)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        params = json.loads(request.body)
        token = params.get("ClientRequestToken")
        if token is not None and token in self.tokens:
            self.answered_by_token += 1
            return AWSResponse(request.url, 200, {}, _Body(b"{}"))
        if self.lost:
            return None
        self._plain.transact_write_items(**params)  # the commit
        if token is not None:
            self.tokens.add(token)
        self.lost += 1
        raise ReadTimeoutError(endpoint_url=request.url)


def test_a_claim_committed_with_its_answer_lost_is_not_mistaken_for_someone_elses(aws: LocalResources) -> None:
    rig = rig_on(aws, Channel.EMAIL)
    event = attention(rig.connection(), at=T0)
    lost = CommitAnswerLost(rig.store._client)

    # When the claim commits, its answer is lost and the SDK retries it
    outcome = rig.notifier.on_needs_attention(event)

    # Then the retry is answered as the commit was: the message goes out, once, and is marked sent
    assert (lost.lost, lost.answered_by_token) == (1, 1)
    assert (outcome.messages_sent, sent()) == (1, 1)
    assert list(claims(aws.table_name).values()) == ["SENT"]
    rig.clock.at(FIRST_SEND + timedelta(minutes=20))
    rig.notifier.sweep()
    assert sent() == 1


def test_each_claim_and_mark_carries_a_request_token_of_its_own(aws: LocalResources) -> None:
    rig = rig_on(aws, Channel.EMAIL)
    tokens: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        tokens.append(params["ClientRequestToken"])

    rig.store._client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", record)
    rig.notifier.on_needs_attention(attention(rig.connection(), at=T0))
    # The claim and the mark: two transactions, two tokens (one token reused with other items would be refused)
    assert len(tokens) == 2
    assert len(set(tokens)) == 2
    assert sent() == 1
