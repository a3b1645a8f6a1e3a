"""What ingestion needs from the outside: the store of connections and events, and Meld's directory."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from connection_repair.domain.connection import Connection
from connection_repair.domain.transitions import SilentUpdate
from connection_repair.outbox.ports import OutboxStore, StoredEvent


class ExpectationUnmet(Exception):
    """A silent update's expectation did not hold; carries the stored connection (None: there is none)."""

    def __init__(self, current: Connection | None) -> None:
        super().__init__("the connection is not in the expected state")
        self.current = current


class ConnectionStore(OutboxStore, Protocol):
    """Connections and their events, written together; the outbox is kept in the event."""

    def get_connection(self, connection_id: str) -> Connection | None: ...

    def save_event(
        self,
        event: StoredEvent,
        *,
        lease_until: datetime,
        connection: Connection | None = None,
        expected_version: int | None = None,
    ) -> None:
        """Store ``event`` (and the new ``connection`` state) atomically, in one write request.

        ``expected_version`` is the version read before (None: the connection must not exist yet).
        Raises ``DuplicateEvent`` or ``ConcurrentUpdate`` and then writes nothing.
        """
        ...

    def save_silent_update(
        self, event: StoredEvent, change: SilentUpdate, *, lease_until: datetime | None = None
    ) -> None:
        """Store ``event`` (its outbox leased until ``lease_until``, None: lapsed) and apply ``change`` to its
        connection in one write request, if ``change.holds``.

        Raises ``DuplicateEvent``, or ``ExpectationUnmet`` with the stored connection; then writes nothing.
        """
        ...


class MeldConnection(Protocol):
    """What ingestion needs from Meld's GET /bank-linking/connections/{id}."""

    connection_id: str
    customer_id: str | None
    external_customer_id: str | None
    institution_id: str | None
    institution_name: str | None
    status: str | None
    status_reason: str | None
    # For Meld's inactive duplicate (PARTIALLY_ACTIVE / INACTIVE_DUPLICATE): the connection it keeps active.
    active_duplicate_connection_id: str | None


class ConnectionDirectory(Protocol):
    """Meld as the source of truth for a connection: one we have never seen, the one it keeps of duplicates."""

    def get_connection(self, connection_id: str) -> MeldConnection | None:
        """The connection as Meld has it; None when Meld does not know it."""
        ...
