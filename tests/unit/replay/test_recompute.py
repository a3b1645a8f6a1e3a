"""A connection recomputed from its stored events: the same logic finds nothing to change, whatever Meld's delivery
order and the repairs in between; a fixed logic changes what it decides and keeps what events cannot tell."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connection_repair.adapters.meld.models import MeldConnectionInfo
from connection_repair.domain import status_policy
from connection_repair.domain.bus_events import ConnectionAttentionEnded, ConnectionNeedsAttention
from connection_repair.domain.connection import Connection
from connection_repair.domain.status_policy import Action
from connection_repair.domain.transitions import apply_change, is_stale
from connection_repair.ingestion.webhook import parse_webhook
from connection_repair.outbox.ports import StoredEvent
from connection_repair.reconcile.observation import observation
from connection_repair.reconcile.ports import Progress
from connection_repair.replay.recompute import Verdict, change_of, recompute
from local.make_events import envelope
from tests.support import status_change

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
STATUSES = [
    ("ACTIVE", None),
    ("RECONNECT_REQUIRED", "LOGIN_REQUIRED"),
    ("DEGRADED", "INTERACTIVE_REFRESH"),
    ("DEGRADED", "INSTITUTION_CURRENTLY_UNAVAILABLE"),
    ("ACTIVE", "ACCESS_EXPIRING_SOON"),
    ("IN_PROGRESS", None),
    ("DELETED", None),
]


def stored(body: dict[str, object], received_at: datetime) -> StoredEvent:
    webhook = parse_webhook(json.dumps(body).encode())
    return StoredEvent(
        event_id=webhook.event_id,
        event_type=webhook.event_type,
        event_time=webhook.timestamp,
        connection_id="conn-1",
        received_at=received_at,
        retry_count=0,
        raw_body=json.dumps(body),
    )


def status_event(event_id: str, at: datetime, status: str, reason: str | None, received_at: datetime) -> StoredEvent:
    if status == "DELETED":
        body = envelope("BANK_LINKING_CONNECTION_DELETED", event_id, at.isoformat(), {"connectionId": "conn-1"})
    else:
        body = status_change(event_id, at.isoformat(), status, reason)
    return stored(body, received_at)


def completion(event_id: str, at: datetime, received_at: datetime) -> StoredEvent:
    body = envelope("BANK_LINKING_CONNECTION_COMPLETED", event_id, at.isoformat(), {"connectionId": "conn-1"})
    return stored(body, received_at)


@dataclass(frozen=True)
class Step:
    """One thing that happened to the connection: an event delivered, or a repair asked for through the API."""

    event: StoredEvent | None = None
    repair_at: datetime | None = None


def ingest(steps: list[Step], *, max_failed_repairs: int = 3) -> tuple[Connection, list[StoredEvent]]:
    """What ingestion and the Repair API leave: the connection, and every event stored (each id once)."""
    current = Connection(connection_id="conn-1")
    kept: dict[str, StoredEvent] = {}
    for step in steps:
        if step.repair_at is not None:
            if current.needs_attention:
                current = current.model_copy(
                    update={"repair_pending": True, "last_repair_at": step.repair_at, "version": current.version + 1}
                )
            continue
        event = step.event
        assert event is not None
        if event.event_id in kept:
            continue  # a redelivery: answered as a duplicate
        kept[event.event_id] = event
        change = change_of(event)
        assert change is not None
        if is_stale(current, event.event_time, event.event_id, completion=not change.carries_status):
            continue
        current = apply_change(
            current,
            change,
            event_id=event.event_id,
            event_time=event.event_time,
            new_episode_id=f"ep-{event.event_id}",
            max_failed_repairs=max_failed_repairs,
        ).connection
    return current, list(kept.values())


@st.composite
def histories(draw: st.DrawFn) -> list[Step]:
    """Status events and completions stamped in any order, delivered in any order (some twice), repairs between."""
    # Stamped around when they are delivered (one a second), so that a completion may come before or after a repair
    # asked between deliveries, and be the verdict on it.
    stamped = st.integers(-5, 15).map(lambda second: T0 + timedelta(hours=3, seconds=second))
    sent: list[tuple[str, datetime, tuple[str, str | None] | None]] = []
    for number in range(draw(st.integers(1, 6))):
        sent.append((f"evt-{number}", draw(stamped), draw(st.none() | st.sampled_from(STATUSES))))
    order = draw(st.permutations(sent + draw(st.lists(st.sampled_from(sent), max_size=2))))
    steps: list[Step] = []
    for position, (event_id, at, status) in enumerate(order):
        received = T0 + timedelta(hours=3, seconds=position)
        if status is None:
            steps.append(Step(completion(event_id, at, received)))
        else:
            steps.append(Step(status_event(event_id, at, *status, received)))
        if draw(st.booleans()):
            steps.append(Step(repair_at=received + timedelta(milliseconds=500)))
    return steps


@settings(max_examples=400, deadline=None)
@given(steps=histories(), max_failed_repairs=st.integers(1, 3))
def test_with_the_same_logic_nothing_changes_whatever_the_delivery_order_and_repairs(
    steps: list[Step], max_failed_repairs: int
) -> None:
    current, events = ingest(steps, max_failed_repairs=max_failed_repairs)

    recomputed = recompute(current, events, new_episode_id="ep-replay", max_failed_repairs=max_failed_repairs)

    if current.last_event_id is None:
        assert recomputed.verdict == Verdict.NO_HISTORY  # completions only: no status to recompute from
    else:
        assert (recomputed.verdict, recomputed.differences) == (Verdict.UNCHANGED, {})


def broken_by_the_bug(monkeypatch: pytest.MonkeyPatch, **state: object) -> tuple[Connection, list[StoredEvent]]:
    """A connection that broke in a way the bug took for a wait."""
    events = [
        status_event("evt-1", T0, "ACTIVE", None, T0),
        status_event("evt-2", T0 + timedelta(hours=1), "DEGRADED", "INTERACTIVE_REFRESH", T0 + timedelta(hours=1)),
    ]
    with monkeypatch.context() as patched:
        patched.setitem(status_policy._BY_STATUS_AND_REASON, ("DEGRADED", "INTERACTIVE_REFRESH"), Action.WAIT)
        current, _ = ingest([Step(event) for event in events])
    return current.model_copy(update=state), events


def test_a_fixed_policy_opens_the_episode_the_bug_missed_from_when_it_broke(monkeypatch: pytest.MonkeyPatch) -> None:
    current, events = broken_by_the_bug(monkeypatch)
    assert (current.action, current.episode_id) == (Action.WAIT, None)

    recomputed = recompute(current, events, new_episode_id="ep-replay", max_failed_repairs=3)

    assert recomputed.verdict == Verdict.CHANGED
    assert recomputed.differences == {
        "action": ("WAIT", "REPAIR"),
        "episodeId": (None, "ep-replay"),
        "episodeAction": (None, "REPAIR"),
        "attentionSince": (None, "2026-11-25T11:00:00Z"),
    }
    assert recomputed.connection is not None
    assert recomputed.connection.version == current.version + 1
    [announced] = recomputed.downstream
    assert isinstance(announced, ConnectionNeedsAttention)
    assert (announced.episode_id, announced.attention_since) == ("ep-replay", T0 + timedelta(hours=1))
    assert recomputed.source_event_id == "evt-2"


def test_what_events_cannot_tell_is_kept_and_counts_as_it_did(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two failed repairs and one awaiting its verdict: with the fix, the third failure's limit applies
    asked, finished = T0 + timedelta(hours=2), T0 + timedelta(hours=2, minutes=3)
    current, events = broken_by_the_bug(
        monkeypatch, failed_repairs=2, repair_pending=True, last_repair_at=asked, completed_at=finished
    )

    two = recompute(current, events, new_episode_id="ep-replay", max_failed_repairs=3)
    assert two.connection is not None
    assert (two.connection.failed_repairs, two.connection.repair_pending) == (2, True)
    assert (two.connection.last_repair_at, two.connection.completed_at) == (asked, finished)
    assert two.connection.action == Action.REPAIR

    limit = recompute(current, events, new_episode_id="ep-replay", max_failed_repairs=2)
    assert limit.connection is not None
    assert (limit.connection.action, limit.connection.episode_id) == (Action.START_NEW_CONNECTION, None)
    assert limit.downstream == []  # no episode was open: nothing to end, nothing to announce


def test_a_completion_after_the_break_is_applied_again_and_the_version_still_moves_on_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    current, events = broken_by_the_bug(monkeypatch)
    finished = completion("evt-3", T0 + timedelta(hours=2), T0 + timedelta(hours=2))
    current, _ = ingest([Step(event) for event in [*events, finished]])  # under today's logic, for the history
    wronged = current.model_copy(update={"action": Action.WAIT, "episode_id": None, "episode_action": None})

    recomputed = recompute(wronged, [*events, finished], new_episode_id="ep", max_failed_repairs=3)

    assert recomputed.connection is not None
    assert (recomputed.connection.action, recomputed.connection.version) == (Action.REPAIR, wronged.version + 1)


def test_a_connection_replaced_asks_nothing_even_under_a_fixed_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    current, events = broken_by_the_bug(monkeypatch, superseded_by="conn-2", action=Action.NONE)

    assert recompute(current, events, new_episode_id="ep", max_failed_repairs=3).verdict == Verdict.UNCHANGED


def test_a_fix_that_ends_an_episode_announces_its_end() -> None:
    events = [status_event("evt-1", T0, "DEGRADED", "INTERACTIVE_REFRESH", T0)]
    current, _ = ingest([Step(event) for event in events])
    assert current.episode_id == "ep-evt-1"
    # The logic deployed now takes that state for a wait (the "fix" here runs the other way)
    policy = {**status_policy._BY_STATUS_AND_REASON, ("DEGRADED", "INTERACTIVE_REFRESH"): Action.WAIT}
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(status_policy, "_BY_STATUS_AND_REASON", policy)
        recomputed = recompute(current, events, new_episode_id="ep", max_failed_repairs=3)

    # WAIT keeps an open episode open (nothing ends it but the customer's way out or a usable connection)
    assert recomputed.differences == {"action": ("REPAIR", "WAIT")}
    assert recomputed.downstream == []


def test_a_newer_event_stored_but_never_applied_is_applied() -> None:
    broke = status_event("evt-1", T0, "RECONNECT_REQUIRED", "LOGIN_REQUIRED", T0)
    healed = status_event("evt-2", T0 + timedelta(hours=1), "ACTIVE", None, T0 + timedelta(hours=1))
    current, _ = ingest([Step(broke)])

    recomputed = recompute(current, [broke, healed], new_episode_id="ep", max_failed_repairs=3)

    assert recomputed.differences["lastEventId"] == ("evt-1", "evt-2")
    assert recomputed.differences["action"] == ("REPAIR", "NONE")
    [ended] = recomputed.downstream
    assert isinstance(ended, ConnectionAttentionEnded)
    assert (ended.episode_id, ended.resolution) == ("ep-evt-1", "REPAIRED")


def test_status_events_never_applied_to_a_connection_only_a_completion_made_are_applied() -> None:
    # Active from the customer's completion alone (no status event applied), then a break stored and not applied
    finished = completion("evt-done", T0, T0)
    current, _ = ingest([Step(finished)])
    assert (current.status, current.last_event_at) == ("ACTIVE", None)
    broke = status_event("evt-broke", T0 + timedelta(hours=1), "RECONNECT_REQUIRED", "LOGIN_REQUIRED", T0)

    recomputed = recompute(current, [finished, broke], new_episode_id="ep", max_failed_repairs=3)

    assert recomputed.differences["action"] == ("NONE", "REPAIR")
    assert recomputed.connection is not None
    assert recomputed.connection.version == current.version + 1


def test_a_completion_received_after_the_newest_status_still_counts_and_the_version_moves_on_once() -> None:
    started = status_event("evt-1", T0, "IN_PROGRESS", None, T0)
    finished = completion("evt-2", T0 + timedelta(minutes=1), T0 + timedelta(minutes=1))
    current, _ = ingest([Step(started), Step(finished)])
    assert current.status == "ACTIVE"  # the completion made it active, no status event said so
    broken = current.model_copy(update={"status": "IN_PROGRESS", "action": Action.NONE})  # as a faulty version left it

    recomputed = recompute(broken, [started, finished], new_episode_id="ep", max_failed_repairs=3)

    assert recomputed.differences == {"status": ("IN_PROGRESS", "ACTIVE")}
    assert recomputed.connection is not None
    assert recomputed.connection.version == broken.version + 1  # one write, however many events it applied again


def test_without_the_event_its_state_came_from_nothing_is_recomputed() -> None:
    broke = status_event("evt-1", T0, "RECONNECT_REQUIRED", "LOGIN_REQUIRED", T0)
    healed = status_event("evt-2", T0 + timedelta(hours=1), "ACTIVE", None, T0 + timedelta(hours=1))
    current, _ = ingest([Step(broke), Step(healed)])

    # evt-2 expired (the table's TTL): evt-1 alone must not bring the break back
    assert recompute(current, [broke], new_episode_id="ep", max_failed_repairs=3).verdict == Verdict.INCOMPLETE
    assert recompute(current, [], new_episode_id="ep", max_failed_repairs=3).verdict == Verdict.NO_HISTORY


def test_what_a_stored_event_says_is_read_as_ingestion_and_reconciliation_read_it() -> None:
    observed_at = T0 + timedelta(hours=5)
    progress = Progress(mode="drift", run_id="run-1", started_at=observed_at)
    meld = MeldConnectionInfo.model_validate(
        {
            "id": "conn-1",
            "customerId": "meld-1",
            "externalCustomerId": "customer-1",
            "institutionId": "inst-1",
            "institutionName": "Chase",
            "status": "DEGRADED",
            "statusReason": "INTERACTIVE_REFRESH",
        }
    )
    event, change = observation(meld, observed_at, progress, "MISSED_BREAK")
    assert change_of(event) == change
    assert (event.event_id, event.event_type, event.connection_id) == (
        "drift#run-1#conn-1",
        "CONNECTION_OBSERVED",
        "conn-1",
    )
    assert (event.event_time, event.received_at, event.retry_count) == (observed_at, observed_at, 0)
    assert json.loads(event.raw_body) == {
        "source": "drift",
        "runId": "run-1",
        "drift": "MISSED_BREAK",
        "observedAt": observed_at.isoformat(),
        "connection": {
            "connectionId": "conn-1",
            "customerId": "meld-1",
            "externalCustomerId": "customer-1",
            "institutionId": "inst-1",
            "institutionName": "Chase",
            "status": "DEGRADED",
            "statusReason": "INTERACTIVE_REFRESH",
        },
    }
    assert (change.status, change.status_reason, change.external_customer_id) == (
        "DEGRADED",
        "INTERACTIVE_REFRESH",
        "customer-1",
    )

    other = envelope("BANK_LINKING_TRANSACTIONS_AGGREGATED", "evt-tx", T0.isoformat(), {"connectionId": "conn-1"})
    assert change_of(stored(other, T0)) is None
    assert change_of(event.model_copy(update={"raw_body": "not json"})) is None
    assert change_of(event.model_copy(update={"raw_body": '{"connection": {}}'})) is None
    assert change_of(event.model_copy(update={"event_type": "BANK_LINKING_CONNECTION_STATUS_CHANGE"})) is None
