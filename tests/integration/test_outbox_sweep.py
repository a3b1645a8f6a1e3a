"""The outbox sweep on moto: outboxes nobody published are found in their sparse index and published once."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from connection_repair.adapters.dynamodb.connection_store import DynamoDBConnectionStore
from connection_repair.adapters.dynamodb.keys import event_key
from connection_repair.adapters.eventbridge import EventBridgePublisher
from connection_repair.domain.bus_events import ConnectionNeedsAttention
from connection_repair.domain.status_policy import Action
from connection_repair.outbox.ports import StoredEvent
from connection_repair.outbox.sweep import OutboxSweep
from functions.outbox_sweeper import app as sweeper_app
from local.aws_resources import LocalResources
from tests.support import LambdaContext

NOW = datetime.now(UTC).replace(microsecond=0)


def announcement(connection_id: str) -> ConnectionNeedsAttention:
    return ConnectionNeedsAttention(
        connection_id=connection_id,
        external_customer_id="customer-1",
        institution_id="inst-1",
        institution_name="Chase",
        status="RECONNECT_REQUIRED",
        status_reason="LOGIN_REQUIRED",
        action=Action.REPAIR,
        episode_id=f"episode-{connection_id}",
        event_time=NOW,
        attention_since=NOW,
    )


def stranded(store: DynamoDBConnectionStore, event_id: str, *, received: datetime, lease_until: datetime) -> None:
    """A stored event whose outbox its delivery never published."""
    connection_id = f"conn-{event_id}"
    store.save_event(
        StoredEvent(
            event_id=event_id,
            event_type="BANK_LINKING_CONNECTION_STATUS_CHANGE",
            event_time=received,
            connection_id=connection_id,
            received_at=received,
            retry_count=0,
            raw_body="{}",
            pending=[announcement(connection_id)],
        ),
        lease_until=lease_until,
    )


@pytest.fixture
def store(aws: LocalResources) -> DynamoDBConnectionStore:
    return DynamoDBConnectionStore(boto3.client("dynamodb"), aws.table_name, event_ttl=timedelta(days=90))


def sweep(aws: LocalResources, store: Any, events: Any = None, slept: list[float] | None = None) -> OutboxSweep:
    publisher = EventBridgePublisher(events or boto3.client("events"), aws.event_bus_name, "connection-repair")
    waits = [] if slept is None else slept
    return OutboxSweep(store=store, publisher=publisher, clock=lambda: NOW, reserve_seconds=5, sleep=waits.append)


def test_a_stranded_outbox_is_published_once_and_then_expires_like_any_event(
    aws: LocalResources, store: DynamoDBConnectionStore, downstream: Callable[[], list[dict[str, Any]]]
) -> None:
    stranded(store, "evt-old", received=NOW - timedelta(days=4), lease_until=NOW - timedelta(days=4))
    stranded(store, "evt-older", received=NOW - timedelta(days=5), lease_until=NOW - timedelta(days=5))

    first = sweep(aws, store).run(remaining_seconds=lambda: 100)
    second = sweep(aws, store).run(remaining_seconds=lambda: 100)

    assert (first.flushed, first.published, first.pending, first.oldest_pending_seconds) == (2, 2, 0, 0)
    assert (second.flushed, second.published) == (0, 0)
    assert sorted((e["detail-type"], e["detail"]["connectionId"]) for e in downstream()) == [
        ("Connection Needs Attention", "conn-evt-old"),
        ("Connection Needs Attention", "conn-evt-older"),
    ]
    assert store.get_event("evt-old").pending == []  # type: ignore[union-attr]


def test_an_outbox_being_published_is_left_to_its_holder_and_its_age_reported(
    aws: LocalResources, store: DynamoDBConnectionStore, downstream: Callable[[], list[dict[str, Any]]]
) -> None:
    stranded(store, "evt-in-flight", received=NOW - timedelta(seconds=30), lease_until=NOW + timedelta(seconds=10))
    stranded(store, "evt-lapsed", received=NOW - timedelta(minutes=20), lease_until=NOW - timedelta(minutes=20))

    outcome = sweep(aws, store).run(remaining_seconds=lambda: 100)

    assert (outcome.flushed, outcome.pending, outcome.oldest_pending_seconds) == (1, 1, 30)
    assert [e["detail"]["connectionId"] for e in downstream()] == ["conn-evt-lapsed"]


def test_an_outbox_written_this_very_moment_is_pending_for_no_time_at_all(
    aws: LocalResources, store: DynamoDBConnectionStore
) -> None:
    stranded(store, "evt-now", received=NOW, lease_until=NOW + timedelta(seconds=15))

    outcome = sweep(aws, store).run(remaining_seconds=lambda: 100)

    assert (outcome.flushed, outcome.pending, outcome.oldest_pending_seconds) == (0, 1, 0)


def test_a_lease_ending_this_very_moment_is_its_holders_and_not_waited_for(
    aws: LocalResources, store: DynamoDBConnectionStore, downstream: Callable[[], list[dict[str, Any]]]
) -> None:
    stranded(store, "evt-1", received=NOW - timedelta(minutes=1), lease_until=NOW)
    slept: list[float] = []

    outcome = sweep(aws, store, slept=slept).run(remaining_seconds=lambda: 100)

    assert (outcome.flushed, outcome.pending, outcome.oldest_pending_seconds) == (0, 1, 60)
    assert (slept, downstream()) == ([], [])


def test_an_outbox_whose_lease_is_taken_after_the_listing_is_waited_for_then_left_pending(
    aws: LocalResources, store: DynamoDBConnectionStore, downstream: Callable[[], list[dict[str, Any]]]
) -> None:
    stranded(store, "evt-1", received=NOW - timedelta(minutes=1), lease_until=NOW - timedelta(minutes=1))

    class RetriedDeliveryMeanwhile:
        """Meld's retry of the delivery takes the lease between the sweep's listing and its claim."""

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def pending_outboxes(self) -> Any:
            for pending in store.pending_outboxes():
                store.claim_pending(pending.event_id, now=NOW, lease_until=NOW + timedelta(minutes=1))
                yield pending

    slept: list[float] = []
    outcome = sweep(aws, RetriedDeliveryMeanwhile(), slept=slept).run(remaining_seconds=lambda: 100)

    assert (outcome.flushed, outcome.pending, outcome.oldest_pending_seconds) == (0, 1, 60)
    assert slept  # the holder was given its moment, on the sweep's own clock
    assert downstream() == []  # the holder publishes, not the sweep


def test_with_the_bus_refusing_everything_stays_pending_and_the_oldest_age_is_reported(
    aws: LocalResources, store: DynamoDBConnectionStore
) -> None:
    for number in range(3):
        at = NOW - timedelta(hours=number + 1)
        stranded(store, f"evt-{number}", received=at, lease_until=at)
    events = boto3.client("events")
    calls: list[str] = []

    def refuse(**_: Any) -> tuple[Any, dict[str, Any]]:
        calls.append("PutEvents")
        return SimpleNamespace(status_code=400, headers={}), {"Error": {"Code": "AccessDeniedException"}}

    events.meta.events.register("before-call.events.PutEvents", refuse)

    outcome = sweep(aws, store, events).run(remaining_seconds=lambda: 100)

    assert (outcome.flushed, outcome.pending, outcome.oldest_pending_seconds) == (0, 3, 3 * 3600)
    assert len(calls) == 1  # the first refusal stops the sweep's publishing
    assert all(store.get_event(f"evt-{n}").pending for n in range(3))  # type: ignore[union-attr]


def test_with_no_time_left_nothing_is_taken(aws: LocalResources, store: DynamoDBConnectionStore) -> None:
    stranded(store, "evt-1", received=NOW - timedelta(hours=1), lease_until=NOW - timedelta(hours=1))

    outcome = sweep(aws, store).run(remaining_seconds=lambda: 1)

    assert (outcome.flushed, outcome.pending) == (0, 1)
    assert store.get_event("evt-1").pending  # type: ignore[union-attr]


def test_an_outbox_written_before_the_rename_is_published_under_the_new_name(
    aws: LocalResources, store: DynamoDBConnectionStore, downstream: Callable[[], list[dict[str, Any]]]
) -> None:
    # As a version before `Connection Attention Ended` stored it: kind "repaired", no version, no eventId
    before = {
        "kind": "repaired",
        "connectionId": "conn-old",
        "externalCustomerId": "customer-1",
        "institutionId": "inst-1",
        "institutionName": "Chase",
        "status": "ACTIVE",
        "statusReason": None,
        "action": "NONE",
        "episodeId": "episode-old",
        "eventTime": NOW.isoformat(),
        "resolution": "REPAIRED",
        "attentionSince": (NOW - timedelta(hours=2)).isoformat(),
    }
    stranded(store, "evt-old", received=NOW - timedelta(hours=1), lease_until=NOW - timedelta(hours=1))
    boto3.client("dynamodb").update_item(
        TableName=aws.table_name,
        Key=event_key("evt-old"),
        UpdateExpression="SET pending = :pending",
        ExpressionAttributeValues={":pending": {"S": json.dumps([before])}},
    )

    assert sweep(aws, store).run(remaining_seconds=lambda: 100).published == 1

    [published] = downstream()
    assert (published["detail-type"], published["detail"]["resolution"]) == ("Connection Attention Ended", "REPAIRED")
    assert (published["detail"]["version"], published["detail"]["eventId"]) == (1, None)


def test_with_exactly_the_reserve_left_the_sweep_still_publishes(
    aws: LocalResources, store: DynamoDBConnectionStore
) -> None:
    stranded(store, "evt-1", received=NOW - timedelta(hours=1), lease_until=NOW - timedelta(hours=1))

    outcome = sweep(aws, store).run(remaining_seconds=lambda: 5)

    assert (outcome.flushed, outcome.pending) == (1, 0)


def test_the_handler_reports_the_oldest_pending_age_on_every_run(
    aws: LocalResources,
    store: DynamoDBConnectionStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TABLE_NAME", aws.table_name)
    monkeypatch.setenv("EVENT_BUS_NAME", aws.event_bus_name)
    sweeper_app.outbox_sweep.cache_clear()
    stranded(store, "evt-1", received=NOW - timedelta(hours=1), lease_until=NOW - timedelta(hours=1))
    capsys.readouterr()

    first = sweeper_app.lambda_handler({}, LambdaContext(remaining_ms=120_000))
    second = sweeper_app.lambda_handler({}, LambdaContext(remaining_ms=120_000))

    sweeper_app.outbox_sweep.cache_clear()
    assert (first["published"], second["published"], second["pending"]) == (1, 0, 0)
    ages = [
        json.loads(line)["OldestPendingOutboxAge"]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{") and "OldestPendingOutboxAge" in line
    ]
    assert ages == [[0.0], [0.0]]  # nothing left after either run: the age is still reported
