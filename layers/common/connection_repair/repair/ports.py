"""What the Repair API and the replacer need: the customer's connections and Meld's connect endpoints."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any, Protocol

from connection_repair.domain.connection import Connection
from connection_repair.domain.incident import InstitutionIncident


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


class InstitutionIncidents(Protocol):
    def incidents(self, institution_ids: Sequence[str]) -> dict[str, InstitutionIncident]:
        """The ongoing incidents among these institutions."""
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


class KeyReused(Exception):
    """An ``Idempotency-Key`` the caller sent before with another request."""


class RequestInProgress(Exception):
    """The first request with this ``Idempotency-Key`` is still being answered."""


class RequestRecords(Protocol):
    """Retried requests (a double click, a client's retry) answered once: the same key, the same answer."""

    def once(self, key: str, request: Mapping[str, Any], answer: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``answer()``, or what it answered when ``request`` came with ``key`` before (within the retention).

        Raises ``KeyReused`` when the key came with a different ``request``, ``RequestInProgress`` while the first
        is still being answered. A request that failed is not recorded: its retry runs again.
        """
        ...
