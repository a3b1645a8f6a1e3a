"""The Repair API's use cases: a customer's connections, a repair token for one, a new connection, preferences.

Ownership: every connection is looked up by id and then checked against the caller; someone else's connection
raises the same ``ConnectionNotFound`` as a missing one, so ids cannot be probed. Writes to a connection are
conditional on its ``version`` (the webhook writer relies on it) and retried on a concurrent change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from connection_repair.domain.connection import Connection
from connection_repair.domain.errors import ConcurrentUpdate
from connection_repair.domain.incident import InstitutionIncident
from connection_repair.domain.status_policy import NOT_REPAIRABLE_STATUSES, USABLE_STATUSES, Action
from connection_repair.platform.clock import Clock
from connection_repair.platform.observability import logger
from connection_repair.platform.retry import retry_on_conflict
from connection_repair.preferences.model import NotificationPreferences, StoredPreferences
from connection_repair.preferences.ports import PreferencesStore
from connection_repair.repair.listing import Listing
from connection_repair.repair.ports import (
    ConnectGateway,
    CustomerConnections,
    InstitutionIncidents,
    MeldFailure,
    MeldFailureKind,
)
from connection_repair.repair.session import token_expires_at

# Optimistic-concurrency retries when a webhook changes the connection between our read and our write.
MAX_WRITE_ATTEMPTS = 5


class ConnectionNotFound(Exception):
    """No such connection, or not the caller's: answered alike."""


class NotRepairable(Exception):
    """Meld cannot repair this connection (EXPIRED, DELETED, IN_PROGRESS, or replaced): start a new one."""

    def __init__(self, connection_id: str, status: str | None, *, code: str, action: Action, message: str) -> None:
        super().__init__(message)
        self.connection_id = connection_id
        self.status = status
        self.code = code
        self.action = action
        self.message = message


class StartRejected(Exception):
    """Meld refused to start a connection with what the caller asked for (e.g. an unknown institutionId)."""

    def __init__(self, message: str, *, meld_code: str | None, request_id: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.meld_code = meld_code
        self.request_id = request_id


@dataclass(frozen=True)
class ConnectSession:
    """What the app needs to open Meld's widget. ``connect_token`` and ``widget_url`` are secrets: never log."""

    connection_id: str
    institution_id: str | None
    connect_token: str
    widget_url: str
    expires_at: datetime
    replaces_connection_id: str | None = None


@dataclass(frozen=True)
class StartRequest:
    institution_id: str | None = None
    products: Sequence[str] | None = None
    replaces_connection_id: str | None = None


class RepairService:
    def __init__(
        self,
        *,
        connections: CustomerConnections,
        preferences: PreferencesStore,
        meld: ConnectGateway,
        incidents: InstitutionIncidents | None = None,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._incidents = incidents
        self._connections = connections
        self._preferences = preferences
        self._meld = meld
        self._clock = clock

    # -- reads --

    def list_connections(self, customer: str, listing: Listing | None = None) -> list[Connection]:
        """The customer's connections that ``listing`` shows, those needing attention first (oldest problem first)."""
        shows = (listing or Listing()).shows
        found = [
            c for c in self._connections.list_connections(customer) if c.external_customer_id == customer and shows(c)
        ]
        far_future = datetime.max.replace(tzinfo=UTC)
        return sorted(found, key=lambda c: (c.attention_since or far_future, c.connection_id))

    def get_connection(self, customer: str, connection_id: str) -> Connection:
        connection = self._connections.get_connection(connection_id)
        if connection is None or connection.external_customer_id != customer:
            raise ConnectionNotFound(connection_id)
        return connection

    def incidents(self, connections: Sequence[Connection]) -> dict[str, InstitutionIncident]:
        """The ongoing incidents of these connections' institutions, by institution id."""
        institutions = sorted({c.institution_id for c in connections if c.institution_id})
        if self._incidents is None or not institutions:
            return {}
        return self._incidents.incidents(institutions)

    # -- repair --

    def repair(self, customer: str, connection_id: str) -> ConnectSession:
        """A fresh connect token for the caller's connection; records the attempt on the connection."""
        connection = self.get_connection(customer, connection_id)
        _check_repairable(connection)
        try:
            grant = self._meld.repair(connection_id)
        except MeldFailure as failure:
            # Meld's 409 is about the connection as it is now: read it again (a webhook may have healed it meanwhile).
            current = (
                self._connections.get_connection(connection_id) if failure.kind == MeldFailureKind.CONFLICT else None
            )
            meaning = _domain_failure(failure, current or connection)
            if meaning is None:
                raise
            raise meaning from failure
        issued_at = self._clock()
        self._record_attempt(connection, issued_at)
        return ConnectSession(
            connection_id=connection_id,
            institution_id=grant.institution_id or connection.institution_id,
            connect_token=grant.connect_token,
            widget_url=grant.widget_url,
            expires_at=token_expires_at(grant.connect_token, issued_at),
        )

    def _record_attempt(self, connection: Connection, at: datetime) -> None:
        def record(current: Connection | None) -> None:
            if current is None:
                return
            attempt = current.model_copy(
                update={
                    "repair_attempts": current.repair_attempts + 1,
                    "last_repair_at": at,
                    "repair_pending": True,
                    # A completion still awaiting its verdict belonged to the previous token.
                    "completed_at": None,
                    "version": current.version + 1,
                }
            )
            self._connections.save_connection(attempt, expected_version=current.version)

        first: Connection | None = connection
        try:
            retry_on_conflict(
                first,
                read=lambda: self._connections.get_connection(connection.connection_id),
                attempt=record,
                conflict=ConcurrentUpdate,
                attempts=MAX_WRITE_ATTEMPTS,
            )
        except ConcurrentUpdate:
            # The customer has a token; failing the request now would only make them ask for another one.
            logger.warning(
                "Repair attempt not recorded: connection kept changing", connection_id=connection.connection_id
            )

    # -- a new connection --

    def start(self, customer: str, request: StartRequest) -> ConnectSession:
        """A new connection through Meld's widget; with ``replaces_connection_id``, it replaces that one once done."""
        replaced = None
        if request.replaces_connection_id is not None:
            replaced = self.get_connection(customer, request.replaces_connection_id)
        try:
            grant = self._meld.start(customer, institution_id=request.institution_id, products=request.products)
        except MeldFailure as failure:
            if failure.kind in (MeldFailureKind.REJECTED, MeldFailureKind.NOT_FOUND, MeldFailureKind.CONFLICT):
                raise StartRejected(failure.message, meld_code=failure.code, request_id=failure.request_id) from None
            raise
        issued_at = self._clock()
        if replaced is not None:
            self._remember_replacement(customer, grant.connection_id, grant.customer_id, request, replaced)
        return ConnectSession(
            connection_id=grant.connection_id,
            institution_id=request.institution_id,
            connect_token=grant.connect_token,
            widget_url=grant.widget_url,
            expires_at=token_expires_at(grant.connect_token, issued_at),
            replaces_connection_id=replaced.connection_id if replaced else None,
        )

    def _remember_replacement(
        self, customer: str, new_id: str, meld_customer_id: str | None, request: StartRequest, replaced: Connection
    ) -> None:
        """Store the new connection with the one it replaces; its completion webhook announces the replacement."""
        fresh = Connection(
            connection_id=new_id,
            external_customer_id=customer,
            customer_id=meld_customer_id,
            institution_id=request.institution_id or replaced.institution_id,
            institution_name=replaced.institution_name
            if request.institution_id in (None, replaced.institution_id)
            else None,
            status="IN_PROGRESS",
            action=Action.NONE,
            replaces_connection_id=replaced.connection_id,
            version=1,
        )
        try:
            self._connections.save_connection(fresh, expected_version=None)
            return
        except ConcurrentUpdate:
            pass

        # A webhook got there first (unusual: the customer has not had the token yet): add the replacement to it.
        def mark(current: Connection | None) -> None:
            if current is None:
                raise ConcurrentUpdate(new_id)
            marked = current.model_copy(
                update={"replaces_connection_id": replaced.connection_id, "version": current.version + 1}
            )
            self._connections.save_connection(marked, expected_version=current.version)

        read = partial(self._connections.get_connection, new_id)
        retry_on_conflict(read(), read=read, attempt=mark, conflict=ConcurrentUpdate, attempts=MAX_WRITE_ATTEMPTS)

    # -- notification preferences --

    def get_preferences(self, customer: str) -> NotificationPreferences:
        stored = self._preferences.get_preferences(customer)
        if stored is None:
            return NotificationPreferences()
        return NotificationPreferences.model_validate(stored.model_dump(exclude={"external_customer_id", "updated_at"}))

    def set_preferences(self, customer: str, preferences: NotificationPreferences) -> NotificationPreferences:
        stored = StoredPreferences(**preferences.model_dump(), external_customer_id=customer, updated_at=self._clock())
        self._preferences.put_preferences(stored)
        return preferences


def _check_repairable(connection: Connection) -> None:
    """Refuse locally what Meld would refuse (409), without spending a call on it."""
    if connection.superseded_by is not None:
        raise NotRepairable(
            connection.connection_id,
            connection.status,
            code="CONNECTION_REPLACED",
            action=Action.NONE,
            message=f"this connection was replaced by {connection.superseded_by}",
        )
    if _healthy(connection):
        raise _nothing_to_repair(connection)
    if connection.status in NOT_REPAIRABLE_STATUSES:
        raise NotRepairable(
            connection.connection_id,
            connection.status,
            code="CONNECTION_NOT_REPAIRABLE",
            action=Action.START_NEW_CONNECTION,
            message=f"a connection in status {connection.status} cannot be repaired; start a new connection",
        )


def _domain_failure(failure: MeldFailure, connection: Connection) -> Exception | None:
    """Meld's 404 and 409 mean the same as ours; everything else goes up as it is."""
    if failure.kind == MeldFailureKind.NOT_FOUND:
        logger.warning(
            "Meld does not know a connection we have",
            connection_id=connection.connection_id,
            meld_request_id=failure.request_id,
        )
        return ConnectionNotFound(connection.connection_id)
    if failure.kind == MeldFailureKind.CONFLICT and _healthy(connection):
        return _nothing_to_repair(connection)
    if failure.kind == MeldFailureKind.CONFLICT:
        return NotRepairable(
            connection.connection_id,
            connection.status,
            code="CONNECTION_NOT_REPAIRABLE",
            action=Action.START_NEW_CONNECTION,
            message="Meld cannot repair this connection; start a new connection",
        )
    return None


def _healthy(connection: Connection) -> bool:
    """Working, with nothing for the customer to do: a repair would send them through Meld's widget for nothing."""
    return connection.status in USABLE_STATUSES and connection.action == Action.NONE


def _nothing_to_repair(connection: Connection) -> NotRepairable:
    return NotRepairable(
        connection.connection_id,
        connection.status,
        code="NOTHING_TO_REPAIR",
        action=Action.NONE,
        message=f"this connection is {connection.status}: there is nothing to repair",
    )
