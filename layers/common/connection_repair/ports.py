"""The outside world as the domain sees it. One adapter each in ``connection_repair.adapters``; fakes in tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from connection_repair.models import AnyDownstreamEvent, Connection, StoredEvent

if TYPE_CHECKING:
    # Annotations only: the notifier and the Repair API never load the transition logic, and preferences (with
    # email-validator behind EmailStr) stay off the webhook's cold start.
    from connection_repair.connection_state import QuietChange
    from connection_repair.preferences import StoredPreferences


class DuplicateEvent(Exception):
    """The event id is already stored."""


class ConcurrentUpdate(Exception):
    """The connection changed between our read and our write."""


class ExpectationUnmet(Exception):
    """A quiet change's expectation did not hold; carries the stored connection (None: there is none)."""

    def __init__(self, current: Connection | None) -> None:
        super().__init__("the connection is not in the expected state")
        self.current = current


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

    def save_quiet_event(self, event: StoredEvent, change: QuietChange) -> None:
        """Store ``event`` and apply ``change`` to its connection in one write request, if ``change.holds``.

        Raises ``DuplicateEvent``, or ``ExpectationUnmet`` with the stored connection; then writes nothing.
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


# --- The Repair API and the replacer -----------------------------------------------------------------------------


class CustomerConnections(Protocol):
    """The connection store as the Repair API and the replacer use it."""

    def get_connection(self, connection_id: str) -> Connection | None: ...

    def list_connections(self, external_customer_id: str) -> list[Connection]:
        """The customer's connections (GSI1), in connection id order."""
        ...

    def save_connection(self, connection: Connection, *, expected_version: int | None) -> None:
        """Write ``connection`` if the stored one still has ``expected_version`` (None: none is stored yet).

        Raises ``ConcurrentUpdate`` otherwise and writes nothing.
        """
        ...


class ConnectGrant(Protocol):
    """A connect token for Meld's widget (repair or a new connection)."""

    connection_id: str
    connect_token: str
    widget_url: str


class RepairConnectGrant(ConnectGrant, Protocol):
    institution_id: str | None


class StartConnectGrant(ConnectGrant, Protocol):
    customer_id: str | None


class MeldFailureKind(StrEnum):
    NOT_FOUND = "NOT_FOUND"  # 404: unknown id
    CONFLICT = "CONFLICT"  # 409: the connection's state forbids it
    REJECTED = "REJECTED"  # 400/422: Meld refused what was sent
    UNAVAILABLE = "UNAVAILABLE"  # 429, 5xx, timeouts: after the client's bounded retries
    MISCONFIGURED = "MISCONFIGURED"  # 401/403: wrong or missing key, or the other environment's key
    BAD_RESPONSE = "BAD_RESPONSE"  # a 2xx we cannot use (not JSON, not the documented shape)


class MeldFailure(Exception):
    """A Meld call that failed, as the domain needs to know it. ``request_id`` is Meld's, for support."""

    def __init__(
        self,
        kind: MeldFailureKind,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after


class ConnectGateway(Protocol):
    """Meld's connect endpoints. Every method raises ``MeldFailure`` on failure."""

    def repair(self, connection_id: str) -> RepairConnectGrant: ...

    def start(
        self, external_customer_id: str, *, institution_id: str | None, products: Sequence[str] | None
    ) -> StartConnectGrant: ...

    def delete(self, connection_id: str) -> None: ...
