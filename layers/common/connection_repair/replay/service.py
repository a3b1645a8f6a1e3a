"""Replay: recompute a connection from its stored events after a logic fix, show what would change, and on request
write it and announce what changed — once.

The write is a stored event of its own (``CONNECTION_REPLAYED``, listed in the connection's history) carrying the
announcements as an outbox, in one transaction with the connection's new state, conditioned on the version replayed:
a second replay of the same state, or one racing a webhook, writes nothing, and the outbox sweep publishes whatever a
failed publish left.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from connection_repair.domain.connection import Connection
from connection_repair.domain.errors import ConcurrentUpdate, DuplicateEvent
from connection_repair.ingestion.ports import ConnectionStore
from connection_repair.outbox.outbox import Outbox
from connection_repair.outbox.ports import EventPublisher, PublishFailed, StoredEvent
from connection_repair.platform.clock import Clock
from connection_repair.platform.observability import logger
from connection_repair.replay.ports import ConnectionHistory
from connection_repair.replay.recompute import Recomputed, Verdict, recompute

# The type of the stored event a replay writes.
REPLAYED = "CONNECTION_REPLAYED"


class Outcome(StrEnum):
    CHANGED = "changed"
    WOULD_CHANGE = "would change"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    # A webhook (or another replay) changed the connection while this one ran: nothing written, run it again.
    RACED = "changed meanwhile: nothing written, run it again"
    UNKNOWN = "no such connection"


@dataclass(frozen=True)
class Replayed:
    connection_id: str
    outcome: Outcome
    reason: str | None = None
    differences: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    # The bus events' detail types, announced (or to be, without applying).
    announcements: list[str] = field(default_factory=list)
    # Stored, and left to the outbox sweep: the bus did not take them now.
    publish_deferred: bool = False


def replay_event_id(connection_id: str, version: int) -> str:
    """One replay per stored state of a connection."""
    return f"REPLAY#{connection_id}#{version}"


class ConnectionReplay:
    def __init__(
        self,
        *,
        store: ConnectionStore,
        history: ConnectionHistory,
        publisher: EventPublisher,
        clock: Clock,
        max_failed_repairs: int,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._store = store
        self._history = history
        self._outbox = Outbox(store, publisher, clock=clock)
        self._clock = clock
        self._max_failed_repairs = max_failed_repairs
        self._new_id = new_id

    def connections_since(self, since: datetime) -> list[str]:
        return sorted(self._history.connections_with_events_since(since))

    def replay(self, connection_id: str, *, apply: bool) -> Replayed:
        current = self._store.get_connection(connection_id)
        if current is None:
            return Replayed(connection_id, Outcome.UNKNOWN)
        recomputed = recompute(
            current,
            self._history.events_of(connection_id),
            new_episode_id=self._new_id(),
            max_failed_repairs=self._max_failed_repairs,
        )
        if recomputed.verdict == Verdict.UNCHANGED:
            return Replayed(connection_id, Outcome.UNCHANGED)
        if recomputed.connection is None:
            return Replayed(connection_id, Outcome.SKIPPED, reason=recomputed.verdict.value)
        if not apply:
            announcements = [event.detail_type for event in recomputed.downstream]
            return Replayed(connection_id, Outcome.WOULD_CHANGE, None, recomputed.differences, announcements)
        return self._write(current, recomputed.connection, recomputed)

    def _write(self, current: Connection, target: Connection, recomputed: Recomputed) -> Replayed:
        """``target`` and its announcements in one transaction on the version replayed, then published."""
        connection_id = current.connection_id
        event_id = replay_event_id(connection_id, current.version)
        # The bus events name the replay as their cause: a consumer can tell them from Meld's.
        downstream = [event.model_copy(update={"event_id": event_id}) for event in recomputed.downstream]
        announcements = [event.detail_type for event in downstream]
        now = self._clock()
        body = {
            "replayOf": recomputed.source_event_id,
            "changes": {name: {"from": old, "to": new} for name, (old, new) in recomputed.differences.items()},
        }
        stored = StoredEvent(
            event_id=event_id,
            event_type=REPLAYED,
            event_time=now,
            connection_id=connection_id,
            received_at=now,
            retry_count=0,
            raw_body=json.dumps(body, separators=(",", ":")),
            pending=downstream,
        )
        try:
            self._store.save_event(
                stored,
                lease_until=self._outbox.lease_until(),
                connection=target,
                expected_version=current.version,
            )
        except (ConcurrentUpdate, DuplicateEvent):
            return Replayed(connection_id, Outcome.RACED)
        logger.info(
            "Connection replayed",
            connection_id=connection_id,
            event_id=event_id,
            changed=sorted(recomputed.differences),
            announced=announcements,
        )
        try:
            self._outbox.publish(event_id, downstream)
        except PublishFailed:
            return Replayed(connection_id, Outcome.CHANGED, None, recomputed.differences, announcements, True)
        return Replayed(connection_id, Outcome.CHANGED, None, recomputed.differences, announcements)
