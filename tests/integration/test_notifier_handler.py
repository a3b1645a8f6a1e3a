"""functions/notifier: the committed EventBridge events through the handler, metrics, and the real wiring."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import ValidationError

from connection_repair.domain.bus_events import ConnectionNeedsAttention, ConnectionRepaired
from connection_repair.notify.outcome import DeliveryFailed
from functions.notifier import app
from local.aws_resources import LocalResources
from local.make_notifier_events import BROKEN_AT, EPISODE_ID
from tests.notifier_support import Clock, FlakyChannel, NotifierRig, attention, build_notifier, sent_emails
from tests.support import EVENTS_DIR, LambdaContext, load_event

CONNECTION_ID = "WQ5RitxnrnggqcT8noLoZN"
CUSTOMER = "customer-123"


@pytest.fixture
def rig(aws: LocalResources, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifierRig]:
    """The handler with a notifier on moto and a clock the test moves."""
    rig = build_notifier(aws.table_name, Clock(BROKEN_AT))
    monkeypatch.setattr(app, "notifier", lambda: rig.notifier)
    rig.preferences(CUSTOMER)
    rig.connection(CONNECTION_ID, customer=CUSTOMER, episode_id=EPISODE_ID, since=BROKEN_AT)
    return rig


@pytest.mark.parametrize("path", sorted(EVENTS_DIR.glob("notifier_*.json")), ids=lambda path: Path(path).stem)
def test_every_notifier_event_is_a_complete_eventbridge_event(path: Path) -> None:
    event = EventBridgeModel.model_validate(json.loads(path.read_text()))
    models = {"Connection Needs Attention": ConnectionNeedsAttention, "Connection Repaired": ConnectionRepaired}
    if event.detail_type in models:
        models[event.detail_type].model_validate(event.detail)
    else:
        assert event.detail_type == "Scheduled Event"
        assert event.source == "aws.events"


def test_needs_attention_then_sweep_then_repaired_through_the_handler(
    rig: NotifierRig, captured_logs: Callable[[], str]
) -> None:
    # The event arrives within the digest window: registered, nothing sent yet
    assert app.lambda_handler(load_event("notifier_connection_needs_attention"), LambdaContext())["sent"] == 0
    # The scheduled sweep sends it
    rig.clock.at(BROKEN_AT + timedelta(minutes=6))
    assert app.lambda_handler(load_event("notifier_reminder_sweep"), LambdaContext())["sent"] == 1
    # A duplicate delivery of the event sends nothing more
    duplicate = app.lambda_handler(load_event("notifier_connection_needs_attention"), LambdaContext())
    assert duplicate["sent"] == 0
    assert duplicate["suppressed"] == {"DUPLICATE": 1}
    rig.repair(CONNECTION_ID, customer=CUSTOMER)
    app.lambda_handler(load_event("notifier_connection_repaired"), LambdaContext())
    rig.clock.at(BROKEN_AT + timedelta(days=5))
    assert app.lambda_handler(load_event("notifier_reminder_sweep"), LambdaContext())["sent"] == 0
    assert len(sent_emails()) == 1

    logs = captured_logs()
    for metric in ("NotificationsSent", "NotificationsSentByChannel", "NotificationsSuppressedByReason"):
        assert f'"{metric}"' in logs
    assert '"EpisodeTimeToRepair"' in logs
    assert '"EpisodesRepairedAfterReminders"' in logs
    assert '"Reminders":"0"' in logs.replace(" ", "")


def test_a_failed_send_fails_the_invocation_so_it_is_retried(
    aws: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = build_notifier(aws.table_name, Clock(BROKEN_AT + timedelta(hours=1)), wrap=lambda c: FlakyChannel(c, 1))
    monkeypatch.setattr(app, "notifier", lambda: rig.notifier)
    rig.preferences(CUSTOMER)
    rig.connection(CONNECTION_ID, customer=CUSTOMER, episode_id=EPISODE_ID, since=BROKEN_AT)
    with pytest.raises(DeliveryFailed):
        app.lambda_handler(load_event("notifier_connection_needs_attention"), LambdaContext())
    assert app.lambda_handler(load_event("notifier_connection_needs_attention"), LambdaContext())["sent"] == 1
    assert len(sent_emails()) == 1


def test_a_poison_event_fails_alone(rig: NotifierRig) -> None:
    poison = copy.deepcopy(load_event("notifier_connection_needs_attention"))
    del poison["detail"]["episodeId"]
    with pytest.raises(ValidationError):
        app.lambda_handler(poison, LambdaContext())
    # The next event is handled normally
    rig.clock.at(BROKEN_AT + timedelta(minutes=6))
    assert app.lambda_handler(load_event("notifier_connection_needs_attention"), LambdaContext())["sent"] == 1


def test_other_detail_types_are_ignored(rig: NotifierRig) -> None:
    event = copy.deepcopy(load_event("notifier_connection_needs_attention"))
    event["detail-type"] = "Connection Replaced"
    assert app.lambda_handler(event, LambdaContext())["sent"] == 0


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
