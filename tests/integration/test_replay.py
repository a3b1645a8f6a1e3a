"""`make replay` on moto: connections stored by the webhook handler under a status policy with a bug, replayed once the
bug is fixed: only what the fix changes is written, announced once, and listed in the connection's history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from connection_repair.adapters.dynamodb.connection_store import DynamoDBConnectionStore
from connection_repair.adapters.dynamodb.connections import connection_from_item
from connection_repair.adapters.dynamodb.history import DynamoDBConnectionHistory
from connection_repair.adapters.dynamodb.keys import connection_key, event_key
from connection_repair.adapters.eventbridge import EventBridgePublisher
from connection_repair.domain import status_policy
from connection_repair.domain.connection import Connection
from connection_repair.domain.status_policy import Action
from connection_repair.outbox.sweep import OutboxSweep
from connection_repair.platform.settings import ReplaySettings
from connection_repair.replay.service import Outcome
from connection_repair.wiring.replay import connection_replay
from functions.webhook_ingest import app as webhook_app
from local.apigw import http_api_event
from local.aws_resources import LocalResources
from local.make_events import envelope
from local.template import Resolver, load_template
from ops.inspect import timeline
from ops.replay import main
from tests.aws_faults import AwsFault, aws_error
from tests.ops_support import MotoStack
from tests.support import LambdaContext, signed_delivery, status_change

# The bug: Meld's "interactive refresh" taken for a wait, so the customer was never asked to repair.
BUGGY_RULE = ("DEGRADED", "INTERACTIVE_REFRESH")


def deliver(connection_id: str, event_id: str, at: str, status: str, reason: str | None = None) -> None:
    body = status_change(event_id, at, status, reason, connection_id=connection_id, external_customer_id="customer-1")
    delivery = signed_delivery(body, now=datetime.now(UTC))
    event = http_api_event("POST", "/webhooks/meld", headers=dict(delivery.headers), body=delivery.raw_body)
    assert webhook_app.lambda_handler(event, LambdaContext())["statusCode"] == 200


def stored(stack: MotoStack, connection_id: str) -> Connection:
    item = boto3.client("dynamodb").get_item(TableName=stack.table_name(), Key=connection_key(connection_id))["Item"]
    return connection_from_item(item)


@pytest.fixture
def stack(webhook_env: LocalResources) -> MotoStack:
    return MotoStack(Resolver(load_template()))


@pytest.fixture
def before_the_fix(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch, downstream: Callable[[], list[dict[str, Any]]]
) -> datetime:
    """Four connections stored while the bug was deployed; yields when their events started arriving."""
    started = datetime.now(UTC) - timedelta(seconds=1)
    with monkeypatch.context() as patched:
        patched.setitem(status_policy._BY_STATUS_AND_REASON, BUGGY_RULE, Action.WAIT)
        deliver("conn-wronged", "evt-1", "2026-11-25T11:00:00Z", *BUGGY_RULE)
        deliver("conn-broken", "evt-2", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
        deliver("conn-fine", "evt-3", "2026-11-25T11:00:00Z", "ACTIVE")
        deliver("conn-healed", "evt-4", "2026-11-25T11:00:00Z", *BUGGY_RULE)
        deliver("conn-healed", "evt-5", "2026-11-25T12:00:00Z", "ACTIVE")
    assert stored(stack, "conn-wronged").action == Action.WAIT  # what the bug left
    downstream()  # what the webhooks announced then
    return started


def test_a_replay_changes_only_what_the_fix_changes_and_announces_it_once(
    stack: MotoStack,
    before_the_fix: datetime,
    downstream: Callable[[], list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    connections = ["conn-broken", "conn-fine", "conn-healed", "conn-wronged"]
    before = {connection: stored(stack, connection) for connection in connections}
    since = f"SINCE={before_the_fix.isoformat()}"
    capsys.readouterr()

    # Without APPLY: what would change, and nothing written or announced
    assert main([since], stack) == 0
    shown = capsys.readouterr().out
    assert "conn-wronged: would change\n  action: WAIT -> REPAIR\n" in shown
    assert "would announce: Connection Needs Attention" in shown
    for unaffected in ("conn-broken", "conn-fine", "conn-healed"):
        assert f"{unaffected}: unchanged\n" in shown
    assert shown.endswith(
        "4 connection(s) replayed: 1 would change, 3 unchanged\nnothing written: APPLY=1 writes "
        "these changes and announces them\n"
    )
    assert {connection: stored(stack, connection) for connection in connections} == before
    assert downstream() == []

    # APPLY=1: written and announced, once
    assert main([since, "APPLY=1"], stack) == 0
    assert "conn-wronged: changed\n  action: WAIT -> REPAIR\n" in (applied := capsys.readouterr().out)
    assert "\n  announced: Connection Needs Attention\n" in applied
    after = stored(stack, "conn-wronged")
    assert (after.action, after.episode_action, after.version) == (Action.REPAIR, Action.REPAIR, 2)
    assert after.attention_since == datetime(2026, 11, 25, 11, 0, tzinfo=UTC)  # since the break, not the replay
    assert (after.last_event_id, after.status_reason) == ("evt-1", "INTERACTIVE_REFRESH")
    [announced] = downstream()
    assert announced["detail-type"] == "Connection Needs Attention"
    assert announced["detail"]["connectionId"] == "conn-wronged"
    assert announced["detail"]["episodeId"] == after.episode_id
    assert announced["detail"]["eventId"] == "REPLAY#conn-wronged#1"
    for unaffected in ("conn-broken", "conn-fine", "conn-healed"):
        assert stored(stack, unaffected) == before[unaffected]
    # The replay's own stored event: its outbox published and cleared
    item = boto3.client("dynamodb").get_item(TableName=stack.table_name(), Key=event_key("REPLAY#conn-wronged#1"))
    assert "pending" not in item["Item"]

    # Again: nothing left to change, nothing announced
    assert main([since, "APPLY=1"], stack) == 0
    assert capsys.readouterr().out.endswith("4 connection(s) replayed: 4 unchanged\n")
    assert downstream() == []
    assert stored(stack, "conn-wronged") == after

    # The connection's history says what the replay did
    [line] = [line for line in timeline(stack, "conn-wronged") if "replayed" in line]
    assert line.endswith(
        "replayed from evt-1: action WAIT -> REPAIR, episodeId None -> "
        + str(after.episode_id)
        + ", episodeAction None -> REPAIR, attentionSince None -> 2026-11-25T11:00:00Z -> accepted"
    )


def test_one_connection_by_id_and_the_arguments_an_operator_can_get_wrong(
    stack: MotoStack, before_the_fix: datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["CONNECTION=conn-wronged"], stack) == 0
    assert capsys.readouterr().out.startswith("conn-wronged: would change\n")
    assert main(["CONNECTION=conn-nobody"], stack) == 1
    assert capsys.readouterr().out.startswith("conn-nobody: no such connection\n")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert main([f"SINCE={later}"], stack) == 0
    assert capsys.readouterr().out == "0 connection(s) replayed: none had events\n"
    assert main([], stack) == main(["CONNECTION=a", "SINCE=2026-12-01"], stack) == 2
    assert main(["SINCE=yesterday"], stack) == 2
    assert "SINCE='yesterday' is not an ISO 8601 time" in capsys.readouterr().err


def test_a_connection_without_a_status_event_is_skipped_and_said_why(
    stack: MotoStack, webhook_env: LocalResources, capsys: pytest.CaptureFixture[str]
) -> None:
    completed = envelope(
        "BANK_LINKING_CONNECTION_COMPLETED",
        "evt-done",
        "2026-11-25T11:00:00Z",
        {"connectionId": "conn-new", "externalCustomerId": "customer-1"},
    )
    delivery = signed_delivery(completed, now=datetime.now(UTC))
    event = http_api_event("POST", "/webhooks/meld", headers=dict(delivery.headers), body=delivery.raw_body)
    assert webhook_app.lambda_handler(event, LambdaContext())["statusCode"] == 200
    capsys.readouterr()

    assert main(["CONNECTION=conn-new", "APPLY=1"], stack) == 0
    assert capsys.readouterr().out.startswith("conn-new: skipped (no status event stored)\n")


def test_since_is_inclusive_to_the_microsecond(stack: MotoStack, before_the_fix: datetime) -> None:
    history = DynamoDBConnectionHistory(boto3.client("dynamodb"), stack.table_name())
    [first] = history.events_of("conn-wronged")

    assert "conn-wronged" in set(history.connections_with_events_since(first.received_at))
    later = set(history.connections_with_events_since(first.received_at + timedelta(microseconds=1)))
    assert "conn-wronged" not in later
    assert "conn-healed" in later  # received after it


def test_a_webhook_landing_during_the_replay_wins_and_the_replay_writes_nothing(
    stack: MotoStack, before_the_fix: datetime, downstream: Callable[[], list[dict[str, Any]]]
) -> None:
    class WebhookMeanwhile(DynamoDBConnectionHistory):
        def events_of(self, connection_id: str) -> list[Any]:
            events = super().events_of(connection_id)
            deliver(connection_id, "evt-meanwhile", "2026-11-25T13:00:00Z", "ACTIVE")
            return events

    replay = replay_for(stack)
    replay._history = WebhookMeanwhile(boto3.client("dynamodb"), stack.table_name())

    assert replay.replay("conn-wronged", apply=True).outcome == Outcome.RACED
    assert (stored(stack, "conn-wronged").action, stored(stack, "conn-wronged").last_event_id) == (
        Action.NONE,
        "evt-meanwhile",
    )
    assert downstream() == []  # ACTIVE after a wait announces nothing; the replay wrote nothing
    # Run again, it finds nothing to change: the webhook's state is the newest
    assert replay_for(stack).replay("conn-wronged", apply=True).outcome == Outcome.UNCHANGED


def test_a_bus_that_refuses_leaves_the_announcement_to_the_outbox_sweep(
    stack: MotoStack, before_the_fix: datetime, downstream: Callable[[], list[dict[str, Any]]]
) -> None:
    events = boto3.client("events")
    AwsFault(events, "events.PutEvents", aws_error("InternalException", 500), times=10)
    settings = ReplaySettings.from_env(stack.function_environment("WebhookFunction"))

    replayed = connection_replay(boto3.client("dynamodb"), events, settings).replay("conn-wronged", apply=True)

    assert (replayed.outcome, replayed.publish_deferred) == (Outcome.CHANGED, True)
    assert stored(stack, "conn-wronged").action == Action.REPAIR
    assert downstream() == []
    # The sweep, once the replay's publishing lease is over, publishes it
    store = DynamoDBConnectionStore(boto3.client("dynamodb"), stack.table_name(), event_ttl=timedelta(days=90))
    publisher = EventBridgePublisher(boto3.client("events"), settings.event_bus_name, settings.event_source)
    later = datetime.now(UTC) + timedelta(minutes=5)
    sweep = OutboxSweep(store=store, publisher=publisher, clock=lambda: later, reserve_seconds=5)
    assert sweep.run(remaining_seconds=lambda: 100).published == 1
    [announced] = downstream()
    assert (announced["detail-type"], announced["detail"]["eventId"]) == (
        "Connection Needs Attention",
        "REPLAY#conn-wronged#1",
    )


def replay_for(stack: MotoStack) -> Any:
    settings = ReplaySettings.from_env(stack.function_environment("WebhookFunction"))
    return connection_replay(boto3.client("dynamodb"), boto3.client("events"), settings)
