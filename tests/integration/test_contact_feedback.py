"""functions/contact_feedback on moto: SES's permanent bounces and complaints (the committed SNS events) mark the
customer's address unusable; transient bounces and other events mark nothing; the notifier then sends no more mail
to it, and the customer's new address is used again."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
import pytest

from connection_repair.adapters.dynamodb.notification_items import customer_key
from connection_repair.adapters.ses import SesEmailChannel
from connection_repair.adapters.ses_tags import customer_of_tag, customer_tag
from connection_repair.wiring.contact_feedback import feedback_store
from functions.contact_feedback import app
from local.aws_resources import LocalResources
from local.make_notifier_events import BROKEN_AT
from tests.notifier_support import Clock, NotifierRig, attention, build_notifier, sent_emails
from tests.support import LambdaContext, load_event

CUSTOMER = "customer-123"


@pytest.fixture
def rig(aws: LocalResources, monkeypatch: pytest.MonkeyPatch) -> NotifierRig:
    monkeypatch.setenv("TABLE_NAME", aws.table_name)
    feedback_store.cache_clear()
    rig = build_notifier(aws.table_name, Clock(BROKEN_AT))
    rig.preferences(CUSTOMER, email="ada@example.com")
    return rig


def with_ses_event(name: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    event = copy.deepcopy(load_event(name))
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    change(message)
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    return event


def unusable(rig: NotifierRig) -> dict[str, Any]:
    item = boto3.client("dynamodb").get_item(TableName=rig.table_name, Key=customer_key(CUSTOMER)).get("Item", {})
    return {name: value["M"] for name, value in item.items() if name.startswith("unusable")}


@pytest.mark.parametrize(
    ("event", "reason"), [("contact_feedback_bounce", "BOUNCED"), ("contact_feedback_complaint", "COMPLAINED")]
)
def test_a_hard_bounce_or_a_complaint_marks_the_address_unusable_and_counts_it(
    rig: NotifierRig, captured_logs: Callable[[], str], event: str, reason: str
) -> None:
    assert app.lambda_handler(load_event(event), LambdaContext()) == {"marked": {reason: 1}}

    [(name, mark)] = unusable(rig).items()
    assert (name, mark["address"], mark["reason"]) == ("unusableEMAIL", {"S": "ada@example.com"}, {"S": reason})
    assert '"ContactsMarkedUnusable"' in captured_logs()


def test_then_no_mail_goes_to_the_address_and_a_new_address_is_used(rig: NotifierRig) -> None:
    app.lambda_handler(load_event("contact_feedback_bounce"), LambdaContext())
    rig.connection("conn-1", customer=CUSTOMER, episode_id="episode-1", since=BROKEN_AT)
    rig.notifier.on_needs_attention(attention(rig.connection("conn-1", customer=CUSTOMER, episode_id="episode-1")))
    rig.clock.at(BROKEN_AT + timedelta(minutes=6))

    assert rig.notifier.sweep().suppressed["CONTACT_UNUSABLE"] == 1
    assert sent_emails() == []

    rig.preferences(CUSTOMER, email="ada.new@example.com")
    rig.connection("conn-2", customer=CUSTOMER, episode_id="episode-2", since=rig.clock.now)
    rig.notifier.on_needs_attention(attention(rig.connection("conn-2", customer=CUSTOMER, episode_id="episode-2")))
    rig.clock.at(rig.clock.now + timedelta(days=1, minutes=6))
    rig.notifier.sweep()
    assert [email.destinations["ToAddresses"] for email in sent_emails()] == [["ada.new@example.com"]]


@pytest.mark.parametrize(
    "change",
    [
        lambda message: message["bounce"].update(bounceType="Transient"),  # a full mailbox: it may work later
        lambda message: message.update(eventType="Delivery"),
        lambda message: message["mail"].pop("tags"),  # sent without its customer: nobody to mark
    ],
    ids=["transient-bounce", "delivery", "no-customer-tag"],
)
def test_what_condemns_no_address_marks_nothing(rig: NotifierRig, change: Callable[[dict[str, Any]], None]) -> None:
    assert app.lambda_handler(with_ses_event("contact_feedback_bounce", change), LambdaContext()) == {"marked": {}}
    assert unusable(rig) == {}


def test_sesv2_notifications_of_the_older_kind_are_read_too(rig: NotifierRig) -> None:
    def older(message: dict[str, Any]) -> None:
        message["notificationType"] = message.pop("eventType")

    assert app.lambda_handler(with_ses_event("contact_feedback_bounce", older), LambdaContext()) == {
        "marked": {"BOUNCED": 1}
    }


def test_each_email_is_tagged_with_its_customer_when_a_configuration_set_reports_back(aws: LocalResources) -> None:
    sent: list[dict[str, Any]] = []
    ses = boto3.client("sesv2")
    ses.meta.events.register("provide-client-params.sesv2.SendEmail", lambda params, **_: sent.append(params))
    from connection_repair.notify.records import Message

    message = Message(subject="s", text="t", html="<p>h</p>", sms="s")
    boto3.client("ses").verify_email_identity(EmailAddress="notifications@app.example.com")
    SesEmailChannel(ses, "notifications@app.example.com", configuration_set="feedback").send(
        "ada@example.com", message, customer="customer/ü 1"
    )
    SesEmailChannel(ses, "notifications@app.example.com").send("ada@example.com", message, customer="customer-1")

    tagged, untagged = sent
    assert tagged["ConfigurationSetName"] == "feedback"
    [tag] = tagged["EmailTags"]
    assert (tag["Name"], customer_of_tag(tag["Value"])) == ("customer", "customer/ü 1")
    assert "EmailTags" not in untagged
    assert customer_tag("x" * 200) is None  # over SES's 256 characters: sent untagged rather than refused
