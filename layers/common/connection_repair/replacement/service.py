"""Replacing a connection once its replacement works: delete the old one at Meld, mark it replaced, end its episode.

Triggered by ``Connection Replaced`` (published through the webhook's outbox when the new connection completes).
The replacing write goes through the same outbox as webhooks (docs/decisions.md §5): a synthetic event item,
keyed by the (old, new) pair, is written in one transaction with the old connection's new state and carries the
``Connection Attention Ended`` (SUPERSEDED) event until EventBridge took it. A retried invocation finds the item and
only publishes what is still pending (or fails while another invocation holds the publishing lease, so Lambda retries
it), so the state changes once and the event goes out at least once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from connection_repair.domain.bus_events import ConnectionReplaced
from connection_repair.domain.connection import Connection
from connection_repair.domain.errors import ConcurrentUpdate, DuplicateEvent
from connection_repair.domain.transitions import mark_replaced
from connection_repair.ingestion.ports import ConnectionDirectory, ConnectionStore
from connection_repair.outbox.outbox import Outbox
from connection_repair.outbox.ports import EventPublisher, StoredEvent
from connection_repair.platform.clock import Clock
from connection_repair.platform.observability import logger
from connection_repair.platform.retry import retry_on_conflict
from connection_repair.repair.ports import ConnectGateway, MeldFailure, MeldFailureKind

SUPERSEDED_EVENT_TYPE = "CONNECTION_SUPERSEDED"
MAX_WRITE_ATTEMPTS = 5


class ReplacementOutcome(StrEnum):
    REPLACED = "retired"
    ALREADY_REPLACED = "already_retired"
    SKIPPED = "skipped"
    # The new connection was Meld's inactive duplicate of the old one, which Meld keeps: nothing is deleted.
    KEPT = "kept"


def superseded_event_id(replaced_id: str, replacement_id: str) -> str:
    return f"SUPERSEDED#{replaced_id}#{replacement_id}"


class ConnectionReplacer:
    def __init__(
        self,
        *,
        store: ConnectionStore,
        publisher: EventPublisher,
        meld: ConnectGateway,
        directory: ConnectionDirectory,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._directory = directory
        self._store = store
        self._outbox = Outbox(store, publisher, clock=clock)
        self._meld = meld
        self._clock = clock

    def replace(self, replaced: ConnectionReplaced) -> ReplacementOutcome:
        """Raises ``MeldFailure`` (other than already gone) or ``PublishFailed``: the invocation is retried."""
        if replaced.inactive_duplicate:
            return self._follow_duplicate(replaced)
        old_id = replaced.replaced_connection_id
        old = self._store.get_connection(old_id)
        if old is None or old.external_customer_id != replaced.external_customer_id:
            # Never delete a connection that is not the same customer's (the API checked; this is defence in depth).
            logger.warning("Replaced connection unknown or not the customer's: left alone", connection_id=old_id)
            return ReplacementOutcome.SKIPPED
        if old.status != "DELETED":
            self._delete_at_meld(old_id)
        first: Connection | None = old
        return retry_on_conflict(
            first,
            read=lambda: self._store.get_connection(old_id),
            attempt=lambda current: self._mark_replaced(current, replaced),
            conflict=ConcurrentUpdate,
            attempts=MAX_WRITE_ATTEMPTS,
        )

    def _follow_duplicate(self, replaced: ConnectionReplaced) -> ReplacementOutcome:
        """The new connection is Meld's inactive duplicate: the old one is replaced by the connection Meld keeps
        (``activeDuplicateConnectionId``), unless that is the old one itself. The kept one is never deleted."""
        found = self._directory.get_connection(replaced.connection_id)
        kept = found.active_duplicate_connection_id if found is not None else None
        if kept is None:
            logger.warning("Inactive duplicate without the connection Meld keeps: left alone", extra=_ids(replaced))
            return ReplacementOutcome.SKIPPED
        if kept == replaced.replaced_connection_id:
            logger.info("Meld keeps the connection that was to be replaced: nothing deleted", extra=_ids(replaced))
            return ReplacementOutcome.KEPT
        return self.replace(replaced.model_copy(update={"connection_id": kept, "inactive_duplicate": False}))

    def _mark_replaced(self, old: Connection | None, replaced: ConnectionReplaced) -> ReplacementOutcome:
        """Mark ``old`` superseded and store its outbox in one write; ``ConcurrentUpdate`` if it changed since read."""
        if old is None:
            return ReplacementOutcome.SKIPPED
        event_id = superseded_event_id(old.connection_id, replaced.connection_id)
        now = self._clock()
        transition = mark_replaced(old, replacement_id=replaced.connection_id, at=now, event_id=replaced.event_id)
        stored = StoredEvent(
            event_id=event_id,
            event_type=SUPERSEDED_EVENT_TYPE,
            event_time=now,
            connection_id=old.connection_id,
            received_at=now,
            retry_count=0,
            raw_body=replaced.model_dump_json(),
            pending=transition.downstream,
        )
        try:
            self._store.save_event(
                stored,
                lease_until=self._outbox.lease_until(),
                connection=transition.connection,
                expected_version=old.version,
            )
        except DuplicateEvent:
            # Replaced before; make sure its events went out (DeliveryInProgress: Lambda retries us later).
            self._outbox.flush(event_id)
            return ReplacementOutcome.ALREADY_REPLACED
        self._outbox.publish(event_id, transition.downstream)
        logger.info("Connection replaced", connection_id=old.connection_id, superseded_by=replaced.connection_id)
        return ReplacementOutcome.REPLACED

    def _delete_at_meld(self, connection_id: str) -> None:
        try:
            self._meld.delete(connection_id)
        except MeldFailure as failure:
            # 404: Meld no longer knows it; 409: already DELETED. Either way it is gone.
            if failure.kind not in (MeldFailureKind.NOT_FOUND, MeldFailureKind.CONFLICT):
                raise
            logger.info("Replaced connection already gone at Meld", connection_id=connection_id)


def _ids(replaced: ConnectionReplaced) -> dict[str, str]:
    return {"connection_id": replaced.connection_id, "replaced_connection_id": replaced.replaced_connection_id}
