"""Meld's real delivery: the completion and the status change sent "in tandem", stamped in either order, delivered
in any order, some twice, perhaps with a deletion after. Whatever the order, the connection ends with the status of
the newest status-bearing event, and a failed repair is counted only when the repair really failed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from connection_repair.domain.connection import Connection, ConnectionChange, event_order_key
from connection_repair.domain.status_policy import Action, classify
from connection_repair.domain.transitions import apply_change, is_stale

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
ATTEMPT = T0 + timedelta(minutes=5)
FINISHED = T0 + timedelta(minutes=10)

# What Meld says of the connection after the customer finished the widget.
OUTCOMES = [
    ("ACTIVE", None),
    ("RECONNECT_REQUIRED", "PROVIDER_ERROR"),
    ("RECONNECT_REQUIRED", "LOGIN_REQUIRED"),
    ("PARTIALLY_ACTIVE", "PARTIAL_AGGREGATION_SUCCESS"),
    ("DEGRADED", "INSTITUTION_DOWN"),
]


@dataclass(frozen=True)
class Event:
    event_id: str
    at: datetime
    change: ConnectionChange


def broken_with_a_repair_pending() -> Connection:
    return Connection(
        connection_id="conn-1",
        external_customer_id="cust-1",
        status="RECONNECT_REQUIRED",
        status_reason="LOGIN_REQUIRED",
        action=Action.REPAIR,
        last_event_at=T0,
        last_event_id="evt-broke",
        episode_id="episode-0",
        episode_action=Action.REPAIR,
        attention_since=T0,
        repair_attempts=1,
        last_repair_at=ATTEMPT,
        repair_pending=True,
        version=2,
    )


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Event], list[Event]]:
    """(the events Meld sent, the order they were delivered in, duplicates included)."""
    status, reason = draw(st.sampled_from(OUTCOMES))
    offset = st.integers(-3000, 3000).map(lambda ms: FINISHED + timedelta(milliseconds=ms))
    sent = [
        Event("evt-completed", draw(offset), ConnectionChange(connection_id="conn-1", completed=True)),
        Event(
            "evt-status", draw(offset), ConnectionChange(connection_id="conn-1", status=status, status_reason=reason)
        ),
    ]
    if draw(st.booleans()):
        deleted_at = T0 + timedelta(minutes=draw(st.integers(6, 20)))
        sent.append(Event("evt-deleted", deleted_at, ConnectionChange(connection_id="conn-1", status="DELETED")))
    delivered = draw(st.permutations(sent + draw(st.lists(st.sampled_from(sent), max_size=3))))
    return sent, delivered


def ingest(delivered: list[Event]) -> Connection:
    """What ingestion does with each delivery: a duplicate event id is refused, a stale event only stored."""
    current, seen = broken_with_a_repair_pending(), set()
    for event in delivered:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        if is_stale(current, event.at, event.event_id, completion=not event.change.carries_status):
            continue
        transition = apply_change(
            current, event.change, event_id=event.event_id, event_time=event.at, new_episode_id=f"ep-{event.event_id}"
        )
        current = transition.connection
    return current


@settings(max_examples=600, deadline=None)
@given(case=deliveries())
def test_any_delivery_order_ends_at_the_newest_status_and_counts_only_real_failures(
    case: tuple[list[Event], list[Event]],
) -> None:
    sent, delivered = case
    final = ingest(delivered)

    with_status = [event for event in sent if event.change.carries_status]
    newest = max(with_status, key=lambda event: event_order_key(event.at, event.event_id))
    assert (final.status, final.status_reason) == (newest.change.status, newest.change.status_reason)
    assert (final.last_event_at, final.last_event_id) == (newest.at, newest.event_id)

    outcome = next(event.change for event in sent if event.event_id == "evt-status")
    failed = classify(outcome.status, outcome.status_reason) == Action.REPAIR
    deleted = any(event.event_id == "evt-deleted" for event in sent)
    if not failed:
        assert final.failed_repairs == 0
    elif not deleted:
        # Still broken after the customer finished: exactly one failure, the attempt judged, asked to repair again
        assert (final.failed_repairs, final.repair_pending, final.completed_at) == (1, False, None)
        assert final.action == Action.REPAIR
    else:
        # A deletion newer than the verdict may arrive first and make it stale: never more than the one failure
        assert final.failed_repairs <= 1
    if newest.change.status == "ACTIVE":
        assert (final.episode_id, final.repair_pending) == (None, False)


@settings(max_examples=300, deadline=None)
@given(case=deliveries())
def test_without_a_deletion_every_delivery_order_ends_in_the_same_state(case: tuple[list[Event], list[Event]]) -> None:
    sent, delivered = case
    if any(event.event_id == "evt-deleted" for event in sent):
        sent = [event for event in sent if event.event_id != "evt-deleted"]
        delivered = [event for event in delivered if event.event_id != "evt-deleted"]
    states = {
        (c.status, c.status_reason, c.action, c.failed_repairs, c.repair_pending, c.episode_id is None)
        for c in (ingest(delivered), ingest(sent), ingest(list(reversed(sent))))
    }
    assert len(states) == 1, states


def test_the_issue_s_sequence_active_stamped_first_stored_after_the_completion() -> None:
    # COMPLETED stamped a moment after the ACTIVE it was sent with, and stored first
    completed = Event(
        "evt-c", FINISHED + timedelta(milliseconds=5), ConnectionChange(connection_id="conn-1", completed=True)
    )
    active = Event("evt-a", FINISHED, ConnectionChange(connection_id="conn-1", status="ACTIVE"))
    final = ingest([completed, active])
    # The ACTIVE is applied, not stale: the episode ends, no failure is counted
    assert (final.status, final.action, final.episode_id, final.failed_repairs) == ("ACTIVE", Action.NONE, None, 0)
