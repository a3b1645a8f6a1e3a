"""A connection recomputed from its stored events by the logic deployed now. Pure functions.

The state events decide is the newest status-bearing event's (Meld's time, then its id: the ordering ingestion
applies), read by today's status policy and transitions. What the events cannot tell is kept as the store has it: the
repairs asked for through the API, a replacement under way or done, the failed repairs counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from connection_repair.domain.bus_events import AnyDownstreamEvent
from connection_repair.domain.connection import Connection, ConnectionChange, event_order_key
from connection_repair.domain.status_policy import USABLE_STATUSES
from connection_repair.domain.transitions import apply_change
from connection_repair.ingestion.webhook import EventType, InvalidWebhook, connection_change, parse_webhook
from connection_repair.outbox.ports import StoredEvent
from connection_repair.reconcile.observation import OBSERVED, observed_change


class Verdict(StrEnum):
    UNCHANGED = "unchanged"
    CHANGED = "changed"
    # Nothing to recompute from: no stored event carries a status.
    NO_HISTORY = "no status event stored"
    # The event the state was computed from is no longer stored (expired): an older one must not overwrite it.
    INCOMPLETE = "the event its state came from is no longer stored"


@dataclass(frozen=True)
class Recomputed:
    verdict: Verdict
    connection: Connection | None = None
    # The fields that differ (by their names in the API): (as stored, as recomputed), JSON values.
    differences: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    downstream: list[AnyDownstreamEvent] = field(default_factory=list)
    # The stored event the recomputed state comes from.
    source_event_id: str | None = None


def change_of(event: StoredEvent) -> ConnectionChange | None:
    """What a stored event says about its connection, as ingestion read it; None for an event that says nothing."""
    if event.event_type == OBSERVED:
        return observed_change(event)
    if event.event_type not in EventType.CONNECTION_STATE:
        return None
    try:
        return connection_change(parse_webhook(event.raw_body.encode()))
    except InvalidWebhook:
        return None


def recompute(
    current: Connection,
    events: list[StoredEvent],
    *,
    new_episode_id: str,
    max_failed_repairs: int,
) -> Recomputed:
    """``current`` as its stored events make it today, and the announcements that takes.

    The newest status event sets the state; a completion received after it still counts (it makes a connection in
    progress active, as it did when it arrived).
    """
    readable = [(stored, change) for stored in events if (change := change_of(stored)) is not None]
    ordered = [(stored, change) for stored, change in readable if change.carries_status]
    if not ordered:
        return Recomputed(Verdict.NO_HISTORY)
    source, change = max(ordered, key=lambda pair: event_order_key(pair[0].event_time, pair[0].event_id))
    newest = event_order_key(source.event_time, source.event_id)
    applied = event_order_key(current.last_event_at, current.last_event_id or "") if current.last_event_at else ""
    if newest < applied:
        return Recomputed(Verdict.INCOMPLETE)
    later_completions = sorted(
        (
            (stored, change)
            for stored, change in readable
            if change.completed and stored.received_at > source.received_at
        ),
        key=lambda pair: (pair[0].received_at, pair[0].event_id),
    )
    # Applied afresh: not ordered against itself (no order to be stale against), and no repair awaiting a verdict, so
    # that none is judged again (the repair history is restored below).
    connection = current.model_copy(update={"last_event_at": None, "repair_pending": False})
    downstream: list[AnyDownstreamEvent] = []
    for stored, applying in [(source, change), *later_completions]:
        transition = apply_change(
            connection,
            applying,
            event_id=stored.event_id,
            event_time=stored.event_time,
            new_episode_id=new_episode_id,
            max_failed_repairs=max_failed_repairs,
        )
        connection = transition.connection
        downstream += transition.downstream
    kept: dict[str, Any] = {"version": current.version + 1}
    # A repair awaiting its verdict still awaits it, unless the connection works now where it did not.
    if connection.status not in USABLE_STATUSES or current.status in USABLE_STATUSES:
        kept |= {"repair_pending": current.repair_pending, "completed_at": current.completed_at}
    connection = connection.model_copy(update=kept)
    before, after = _fields(current), _fields(connection)
    differences = {name: (before[name], after[name]) for name in before if before[name] != after[name]}
    if not differences:
        return Recomputed(Verdict.UNCHANGED)
    return Recomputed(Verdict.CHANGED, connection, differences, downstream, source.event_id)


def _fields(connection: Connection) -> dict[str, Any]:
    """What a replay compares, by the names the API uses: everything but the write counter."""
    return connection.model_dump(mode="json", exclude={"version"})
