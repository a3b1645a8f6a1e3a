"""The outside world as the domain sees it. One adapter each in ``connection_repair.adapters``; fakes in tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from connection_repair.models import AnyDownstreamEvent, Connection, StoredEvent
from connection_repair.preferences import StoredPreferences


class DuplicateEvent(Exception):
    """The event id is already stored."""


class ConcurrentUpdate(Exception):
    """The connection changed between our read and our write."""


class ConnectionStore(Protocol):
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

    def get_event(self, event_id: str) -> StoredEvent | None: ...

    def claim_pending(self, event_id: str, *, now: datetime, lease_until: datetime) -> list[AnyDownstreamEvent]:
        """Take the publishing lease of an event whose outbox is not empty and whose lease has lapsed.

        Returns the pending events, or an empty list when there is nothing to take (or someone holds it).
        """
        ...

    def clear_pending(self, event_id: str) -> None: ...


class EventPublisher(Protocol):
    def publish(self, events: Sequence[AnyDownstreamEvent]) -> None:
        """Put every event on the bus; raise ``PublishFailed`` unless all were accepted."""
        ...


class PublishFailed(Exception):
    """Some downstream events were not accepted by the bus."""


class MeldConnection(Protocol):
    """What ingestion needs from Meld's GET /bank-linking/connections/{id}."""

    connection_id: str
    customer_id: str | None
    external_customer_id: str | None
    institution_id: str | None
    institution_name: str | None
    status: str | None
    status_reason: str | None


class ConnectionDirectory(Protocol):
    """Meld as the source of truth for a connection we have never seen."""

    def get_connection(self, connection_id: str) -> MeldConnection | None:
        """The connection as Meld has it; None when Meld does not know it."""
        ...


class PreferencesStore(Protocol):
    def get_preferences(self, external_customer_id: str) -> StoredPreferences | None: ...

    def put_preferences(self, preferences: StoredPreferences) -> None: ...
