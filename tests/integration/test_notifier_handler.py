"""functions/notifier: the committed events (queued bus events, the sweep) through the handler, and the real wiring."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SqsModel

from connection_repair.adapters.dynamodb.notification_items import claim_key
from connection_repair.domain.bus_events import ConnectionAttentionEnded, ConnectionNeedsAttention
from functions.notifier import app
from local.aws_resources import LocalResources
from local.make_notifier_events import BROKEN_AT, EPISODE_ID, queued
from tests.notifier_support import Clock, FlakyChannel, NotifierRig, attention, build_notifier, sent_emails
from tests.support import EVENTS_DIR, LambdaContext, load_event

CONNECTION_ID = "WQ5RitxnrnggqcT8noLoZN"
CUSTOMER = "customer-123"
NO_FAILURES: dict[str, list[Any]] = {"batchItemFailures": []}


@pytest.fixture
def rig(aws: LocalResources, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifierRig]:
    """The handler with a notifier on moto and a clock the test moves."""
    rig = build_notifier(aws.table_name, Clock(BROKEN_AT))
    monkeypatch.setattr(app, "notifier", lambda: rig.notifier)
    rig.preferences(CUSTOMER)
    rig.connection(CONNECTION_ID, customer=CUSTOMER, episode_id=EPISODE_ID, since=BROKEN_AT)
    return rig


def summaries(logs: str) -> list[dict[str, Any]]:
    """The handler's `Notifier done` lines, one per event handled."""
    lines = (json.loads(line) for line in logs.splitlines() if line.startswith("{"))
    return [line for line in lines if line.get("message") == "Notifier done"]


def bus_event(name: str) -> dict[str, Any]:
    """The EventBridge event inside a committed notifier event."""
    body: dict[str, Any] = json.loads(load_event(name)["Records"][0]["body"])
    return body


@pytest.mark.parametrize("path", sorted(EVENTS_DIR.glob("notifier_*.json")), ids=lambda path: Path(path).stem)
def test_every_notifier_event_is_what_lambda_delivers(path: Path) -> None:
    event = json.loads(path.read_text())
    if "Records" not in event:
        scheduled = EventBridgeModel.model_validate(event)
        assert (scheduled.detail_type, scheduled.source) == ("Scheduled Event", "aws.events")
        return
    models = {
        "Connection Needs Attention": ConnectionNeedsAttention,
        "Connection Attention Ended": ConnectionAttentionEnded,
    }
    for record in SqsModel.model_validate(event).Records:
        assert record.eventSource == "aws:sqs"
        queued = app.QueuedBusEvent.model_validate(record.model_dump()).body
        models[queued.detail_type].model_validate(queued.detail)


def test_what_the_notifier_logs_for_a_bus_event_names_its_meld_event_its_connection_and_the_message_sent(
    rig: NotifierRig, captured_logs: Callable[[], str]
) -> None:
    # The event arrives after the digest window: the message goes out while it is handled
    rig.clock.at(BROKEN_AT + timedelta(minutes=6))
    assert app.lambda_handler(load_event("notifier_connection_needs_attention"), LambdaContext()) == NO_FAILURES

    [email] = sent_emails()
    lines = [json.loads(line) for line in captured_logs().splitlines() if line.startswith('{"level"')]
    handled = [line for line in lines if line["message"] in ("Notification sent", "Notifier done")]
    assert [line["message"] for line in handled] == ["Notification sent", "Notifier done"]
    for line in handled:
        # The Meld event that caused it (events/webhook_status_change_reconnect_required.json), and its connection
        assert (line["event_id"], line["connection_id"]) == ("evt-status-0002", CONNECTION_ID)
    assert handled[0]["message_ids"] == {"EMAIL": email.id}  # SES's id: what SES's own records are searched by
    claim = rig.store._client.get_item(TableName=rig.table_name, Key=claim_key(CUSTOMER, EPISODE_ID, 0))["Item"]
    assert claim["messageIds"] == {"M": {"EMAIL": {"S": email.id}}}  # kept with the claim, for `make inspect`
    # The next event starts clean: nothing of this one's keys is left on the logger
    before = len(captured_logs())
    rig.clock.at(BROKEN_AT + timedelta(minutes=12))
    app.lambda_handler(load_event("notifier_reminder_sweep"), LambdaContext())
    swept = [json.loads(line) for line in captured_logs()[before:].splitlines() if line.startswith('{"level"')]
    assert swept
    assert all("event_id" not in line for line in swept)


def test_needs_attention_then_sweep_then_repaired_through_the_handler(
    rig: NotifierRig, captured_logs: Callable[[], str]
) -> None:
    # The event arrives within the digest window: registered, nothing sent yet
    assert app.lambda_handler(load_event("notifier_connection_needs_attention"), LambdaContext()) == NO_FAILURES
    assert sent_emails() == []
    # The scheduled sweep sends it
    rig.clock.at(BROKEN_AT + timedelta(minutes=6))
    assert app.lambda_handler(load_event("notifier_reminder_sweep"), LambdaContext())["sent"] == 1
    # A duplicate delivery of the event sends nothing more
    assert app.lambda_handler(load_event("notifier_connection_needs_attention"), LambdaContext()) == NO_FAILURES
    rig.repair(CONNECTION_ID, customer=CUSTOMER)
    assert app.lambda_handler(load_event("notifier_connection_attention_ended"), LambdaContext()) == NO_FAILURES
    rig.clock.at(BROKEN_AT + timedelta(days=5))
    assert app.lambda_handler(load_event("notifier_reminder_sweep"), LambdaContext())["sent"] == 0
    assert len(sent_emails()) == 1

    logs = captured_logs()
    queued = [line for line in summaries(logs) if line["detail_type"] != "Scheduled Event"]
    assert [(line["sent"], line["suppressed"]) for line in queued] == [(0, {}), (0, {"DUPLICATE": 1}), (0, {})]
    assert {line["correlation_id"] for line in queued} == {
        bus_event("notifier_connection_needs_attention")["id"],
        bus_event("notifier_connection_attention_ended")["id"],
    }
    for metric in ("NotificationsSent", "NotificationsSentByChannel", "NotificationsSuppressedByReason"):
        assert f'"{metric}"' in logs
    assert '"EpisodeTimeToRepair"' in logs
    assert '"EpisodesRepairedAfterReminders"' in logs
    assert '"Reminders":"0"' in logs.replace(" ", "")


def test_a_failed_send_returns_its_record_to_the_queue(aws: LocalResources, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = build_notifier(aws.table_name, Clock(BROKEN_AT + timedelta(hours=1)), wrap=lambda c: FlakyChannel(c, 1))
    monkeypatch.setattr(app, "notifier", lambda: rig.notifier)
    rig.preferences(CUSTOMER)
    rig.connection(CONNECTION_ID, customer=CUSTOMER, episode_id=EPISODE_ID, since=BROKEN_AT)
    event = load_event("notifier_connection_needs_attention")
    [message_id] = [record["messageId"] for record in event["Records"]]

    assert app.lambda_handler(event, LambdaContext()) == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert sent_emails() == []
    # Redelivered, it goes out once
    assert app.lambda_handler(event, LambdaContext()) == NO_FAILURES
    assert len(sent_emails()) == 1


def test_only_the_records_that_fail_go_back_to_the_queue(rig: NotifierRig, captured_logs: Callable[[], str]) -> None:
    rig.clock.at(BROKEN_AT + timedelta(minutes=6))
    good = bus_event("notifier_connection_needs_attention")
    incomplete = copy.deepcopy(good) | {"id": "incomplete"}
    del incomplete["detail"]["episodeId"]
    batch = queued(incomplete, good)
    not_json = copy.deepcopy(batch["Records"][0]) | {"messageId": "not-json", "body": "{not json"}
    batch["Records"].insert(0, not_json)

    result = app.lambda_handler(batch, LambdaContext())

    failed = [batch["Records"][0]["messageId"], batch["Records"][1]["messageId"]]
    assert result == {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
    assert len(sent_emails()) == 1
    lines = [json.loads(line) for line in captured_logs().splitlines() if line.startswith("{")]
    returned = [line for line in lines if line.get("message") == "Queued event returned to the queue"]
    assert [(line["message_id"], line["error"]) for line in returned] == [
        (failed[0], "ValidationError"),
        (failed[1], "ValidationError"),
    ]


def test_other_detail_types_are_ignored(rig: NotifierRig) -> None:
    event = bus_event("notifier_connection_needs_attention") | {"detail-type": "Connection Replaced"}
    rig.clock.at(BROKEN_AT + timedelta(minutes=6))
    assert app.lambda_handler(queued(event), LambdaContext()) == NO_FAILURES
    assert sent_emails() == []


def test_the_real_wiring_builds_from_the_template_environment(notifier_env: LocalResources) -> None:
    result = app.lambda_handler(load_event("notifier_reminder_sweep"), LambdaContext())
    assert result == {"sent": 0, "suppressed": {}, "deferred": {}, "failures": 0, "itemsRead": 0}


def test_a_sweep_short_of_time_sends_nothing_it_cannot_finish_and_says_so(
    aws: LocalResources, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rig = build_notifier(aws.table_name, Clock(BROKEN_AT))
    monkeypatch.setattr(app, "notifier", lambda: rig.notifier)
    rig.preferences()
    rig.notifier.on_needs_attention(attention(rig.connection(), at=BROKEN_AT))
    rig.clock.at(BROKEN_AT + timedelta(minutes=10))

    result = app.lambda_handler(load_event("notifier_reminder_sweep"), LambdaContext(remaining_ms=15_000))

    assert result["sent"] == 0
    assert sent_emails() == []
    assert '"SweepTruncated"' in capsys.readouterr().out
    # With time enough, the next sweep sends it
    assert app.lambda_handler(load_event("notifier_reminder_sweep"), LambdaContext())["sent"] == 1
