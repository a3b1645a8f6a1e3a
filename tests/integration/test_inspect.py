"""`make inspect` on moto: a connection's history as the webhook handler and the notifier left it, printed in order
with each event's outcome, the episode and its messages, and the connection as it is now."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from connection_repair.adapters.dynamodb.notifications import DynamoDBNotificationStore
from connection_repair.domain.status_policy import Action
from connection_repair.notify.records import EpisodeNotice, MessageClaim
from connection_repair.platform.clock import utc_stamp
from functions.webhook_ingest import app as webhook_app
from local.apigw import http_api_event
from local.aws_resources import LocalResources
from local.make_events import envelope
from local.template import Resolver, load_template
from ops.inspect import main, timeline
from tests.ops_support import MotoStack
from tests.support import LambdaContext, signed_delivery, status_change

CONNECTION = "conn-1"
CUSTOMER = "customer-1"


def deliver(event_id: str, at: str, status: str, reason: str | None = None, *, retry: int = 0) -> int:
    body = status_change(event_id, at, status, reason, connection_id=CONNECTION, external_customer_id=CUSTOMER)
    delivery = signed_delivery(body, now=datetime.now(UTC), retry_count=retry)
    event = http_api_event("POST", "/webhooks/meld", headers=dict(delivery.headers), body=delivery.raw_body)
    status_code: int = webhook_app.lambda_handler(event, LambdaContext())["statusCode"]
    return status_code


@pytest.fixture
def stack(webhook_env: LocalResources) -> MotoStack:
    return MotoStack(Resolver(load_template()))


def test_a_connections_timeline_shows_each_event_with_its_outcome_the_episode_and_its_messages(
    stack: MotoStack,
) -> None:
    # Broken at 11:00 (Meld's second try), an older ACTIVE arriving late, then repaired at 12:00; one redelivery
    assert deliver("evt-broken", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED", retry=1) == 200
    assert deliver("evt-old", "2026-11-25T10:00:00Z", "ACTIVE") == 200
    assert deliver("evt-broken", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED", retry=2) == 200
    # The notifier's part: the episode registered, its first message claimed and sent, the episode closed
    store = DynamoDBNotificationStore(boto3.client("dynamodb"), stack.table_name())
    since = datetime.now(UTC)
    notice = EpisodeNotice(
        episode_id="episode-1",
        connection_id=CONNECTION,
        external_customer_id=CUSTOMER,
        action=Action.REPAIR,
        attention_since=since,
        due_at=since + timedelta(minutes=5),
    )
    store.register_episode(notice)
    quiet_until = since + timedelta(minutes=30)
    store.defer(notice, quiet_until, reason="QUIET_HOURS", now=since)
    sent_at = datetime.now(UTC)
    claim = MessageClaim("episode-1", 0)
    store.claim(CUSTOMER, [claim], token="t", now=sent_at, previous_sent_at=None, lease_until=sent_at)
    sent = notice.model_copy(update={"next_message": 1, "messages_sent": 1, "due_at": None})
    store.advance(notice, sent, [claim], sent_at, "SENT", message_ids={"EMAIL": "ses-message-1"})
    assert deliver("evt-healed", "2026-11-25T12:00:00Z", "ACTIVE") == 200
    store.close_episode(CUSTOMER, "episode-1", resolution="REPAIRED", now=datetime.now(UTC), connection_id=CONNECTION)

    lines = timeline(stack, CONNECTION)

    assert lines[0] == "connection conn-1"
    body = [line.split("  ", 1)[1] for line in lines[1:-1]]
    # In the order it happened here; the redelivery was a duplicate, not stored again
    assert body == [
        "event evt-broken (2026-11-25T11:00:00+00:00): BANK_LINKING_CONNECTION_STATUS_CHANGE "
        "RECONNECT_REQUIRED/LOGIN_REQUIRED -> accepted, Meld's retry 1",
        "event evt-old (2026-11-25T10:00:00+00:00): BANK_LINKING_CONNECTION_STATUS_CHANGE ACTIVE -> stale: older than "
        "what was applied",
        "episode episode-1 (REPAIR): the notifier registered it",
        f"message #0 of episode episode-1: deferred (QUIET_HOURS) until {utc_stamp(quiet_until)}",
        f"message #0 of episode episode-1: claimed, SENT at {utc_stamp(sent_at)} (EMAIL ses-message-1)",
        "event evt-healed (2026-11-25T12:00:00+00:00): BANK_LINKING_CONNECTION_STATUS_CHANGE ACTIVE -> accepted",
        "episode episode-1 ended (REPAIRED): 1 sent",
    ]
    assert lines[-1].startswith("now: ACTIVE/None action NONE, customer customer-1, episode None")


def test_by_customer_every_connection_of_theirs_and_an_unknown_one_is_said(
    stack: MotoStack, capsys: pytest.CaptureFixture[str]
) -> None:
    deliver("evt-1", "2026-11-25T11:00:00Z", "ACTIVE")
    capsys.readouterr()  # the handler's metrics

    assert main([f"CUSTOMER={CUSTOMER}"], stack) == 0
    assert capsys.readouterr().out.startswith("connection conn-1\n")
    assert timeline(stack, "conn-unknown") == [f"no connection conn-unknown in {stack.table_name()}"]
    assert main(["CUSTOMER=nobody"], stack) == 1
    assert main([]) == main(["CONNECTION=a", "CUSTOMER=b"]) == 2


def test_an_event_of_another_type_naming_the_connection_is_in_its_history_as_ignored(
    stack: MotoStack, captured_logs: Callable[[], str]
) -> None:
    aggregated = envelope(
        "BANK_LINKING_TRANSACTIONS_AGGREGATED", "evt-tx", "2026-11-25T11:05:00Z", {"connectionId": CONNECTION}
    )
    assert deliver("evt-1", "2026-11-25T11:00:00Z", "ACTIVE") == 200
    delivery = signed_delivery(aggregated, now=datetime.now(UTC))
    event = http_api_event("POST", "/webhooks/meld", headers=dict(delivery.headers), body=delivery.raw_body)
    assert webhook_app.lambda_handler(event, LambdaContext())["statusCode"] == 200

    [line] = [line for line in timeline(stack, CONNECTION) if "evt-tx" in line]
    assert line.endswith("BANK_LINKING_TRANSACTIONS_AGGREGATED -> ignored")
    [logged] = [
        json.loads(text) for text in captured_logs().splitlines() if '"evt-tx"' in text and "Webhook ingested" in text
    ]
    assert (logged["outcome"], logged["connection_id"]) == ("ignored", CONNECTION)
