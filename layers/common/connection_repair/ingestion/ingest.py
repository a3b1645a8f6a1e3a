"""One connection event stored once, applied in order, announced once: the path every change of state takes.

A webhook (``ingestion.service``) and a state read back from Meld (``reconcile``) both come here, so a reconciled
break notifies the customer exactly as its webhook would have, and a reconciled repair ends the episode.

Exactly once: the event is inserted under its ``eventId`` with a condition, in the same transaction as the
connection's new state, so a retry or a concurrent duplicate can neither apply nor announce twice.

Nothing stored is lost downstream: the downstream events are written into the stored event (the outbox,
``connection_repair.outbox``) in that same transaction and removed only after EventBridge accepted them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from connection_repair.domain.connection import Connection, ConnectionChange
from connection_repair.domain.errors import ConcurrentUpdate, DuplicateEvent
from connection_repair.domain.status_policy import is_known
from connection_repair.domain.transitions import DEFAULT_MAX_FAILED_REPAIRS, apply_change, is_stale, silent_update
from connection_repair.ingestion.ports import ConnectionDirectory, ConnectionStore, ExpectationUnmet
from connection_repair.outbox.outbox import Outbox
from connection_repair.outbox.ports import EventPublisher, StoredEvent
from connection_repair.platform.clock import Clock
from connection_repair.platform.observability import logger
from connection_repair.platform.retry import retry_on_conflict

# Optimistic-concurrency retries when the connection changes under us.
MAX_APPLY_ATTEMPTS = 5


class IngestOutcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    STALE = "stale"
    IGNORED = "ignored"


@dataclass(frozen=True)
class IngestResult:
    outcome: IngestOutcome
    event_id: str
    event_type: str
    connection_id: str | None = None
    published: int = 0
    # The connection's status and reason after the event, and whether Meld documents them.
    status: str | None = None
    status_reason: str | None = None
    unknown_state: bool = False
    # Stamped further in the future than the tolerance: ordered at its receipt instead (see ``ordered_at``).
    future_stamped: bool = False


class EventIngestor:
    def __init__(
        self,
        *,
        store: ConnectionStore,
        publisher: EventPublisher,
        directory: Callable[[], ConnectionDirectory],
        clock: Clock = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        sleep: Callable[[float], None] = time.sleep,
        max_failed_repairs: int = DEFAULT_MAX_FAILED_REPAIRS,
    ) -> None:
        self._max_failed_repairs = max_failed_repairs
        self._store = store
        self._outbox = Outbox(store, publisher, clock=clock, sleep=sleep)
        self._directory = directory
        self._new_id = new_id

    def ingest(self, stored: StoredEvent, change: ConnectionChange | None) -> IngestResult:
        """Store ``stored`` once and apply ``change`` (None: an event that changes no connection) in event order.

        Raises ``DeliveryInProgress`` or ``PublishFailed`` when what it announces is not out yet: the caller retries.
        """
        try:
            if change is None:
                published = self._save_alone(stored)
                return IngestResult(
                    IngestOutcome.IGNORED, stored.event_id, stored.event_type, stored.connection_id, published
                )
            return self._apply(stored, change)
        except DuplicateEvent:
            # A duplicate is done only once its downstream events went out.
            published = self._outbox.flush(stored.event_id)
            return IngestResult(
                IngestOutcome.DUPLICATE, stored.event_id, stored.event_type, stored.connection_id, published
            )

    def _apply(self, stored: StoredEvent, change: ConnectionChange) -> IngestResult:
        # Most events change nothing downstream: try that in one write, without reading first. When the
        # expectation fails, the store hands back the connection as it is, and the full transition runs on it.
        silent = silent_update(change, event_id=stored.event_id, event_time=stored.event_time)
        try:
            self._store.save_silent_update(stored, silent, lease_until=self._lease(stored))
        except ExpectationUnmet as unmet:
            current = unmet.current
        else:
            published = self._outbox.publish(stored.event_id, stored.pending)
            return self._result(
                IngestOutcome.ACCEPTED, stored, change.status, change.status_reason, published=published
            )
        return retry_on_conflict(
            current,
            read=lambda: self._store.get_connection(change.connection_id),
            attempt=lambda current: self._transition(stored, change, current),
            conflict=ConcurrentUpdate,
            attempts=MAX_APPLY_ATTEMPTS,
        )

    def _transition(self, stored: StoredEvent, change: ConnectionChange, current: Connection | None) -> IngestResult:
        """The full transition on ``current``; ``ConcurrentUpdate`` when the connection changed since it was read."""
        if is_stale(current, stored.event_time, stored.event_id, completion=not change.carries_status):
            return self._result(IngestOutcome.STALE, stored, published=self._save_alone(stored))
        if current is None and change.external_customer_id is None:
            change = self._attribute(change)
            if change.external_customer_id is None:
                logger.warning("Connection unknown to Meld: unattributed", connection_id=change.connection_id)
        transition = apply_change(
            current,
            change,
            event_id=stored.event_id,
            event_time=stored.event_time,
            new_episode_id=self._new_id(),
            max_failed_repairs=self._max_failed_repairs,
        )
        pending = [*stored.pending, *transition.downstream]
        self._store.save_event(
            stored.model_copy(update={"pending": pending}),
            lease_until=self._outbox.lease_until(),
            connection=transition.connection,
            expected_version=current.version if current else None,
        )
        published = self._outbox.publish(stored.event_id, pending)
        connection = transition.connection
        return self._result(
            IngestOutcome.ACCEPTED, stored, connection.status, connection.status_reason, published=published
        )

    def _save_alone(self, stored: StoredEvent) -> int:
        """Store an event that changes no connection (ignored, stale), then publish what it carries (a forward)."""
        self._store.save_event(stored, lease_until=self._lease(stored))
        return self._outbox.publish(stored.event_id, stored.pending)

    def _lease(self, stored: StoredEvent) -> datetime:
        """The publishing lease of a stored event: taken while it carries something to publish, lapsed otherwise."""
        return self._outbox.lease_until() if stored.pending else stored.received_at

    @staticmethod
    def _result(
        outcome: IngestOutcome,
        stored: StoredEvent,
        status: str | None = None,
        reason: str | None = None,
        *,
        published: int,
    ) -> IngestResult:
        return IngestResult(
            outcome,
            stored.event_id,
            stored.event_type,
            stored.connection_id,
            published=published,
            status=status,
            status_reason=reason,
            unknown_state=not is_known(status, reason),
        )

    def _attribute(self, change: ConnectionChange) -> ConnectionChange:
        """Fill in whose connection this is from Meld, the source of truth, for a connection never seen before."""
        found = self._directory().get_connection(change.connection_id)
        if found is None:
            return change
        return change.model_copy(
            update={
                "external_customer_id": found.external_customer_id,
                "customer_id": change.customer_id or found.customer_id,
                "institution_id": change.institution_id or found.institution_id,
                "institution_name": change.institution_name or found.institution_name,
            }
        )
