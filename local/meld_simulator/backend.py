"""Meld's Bank Linking behaviour, in memory: connections, connect tokens and the webhooks that state changes send."""

from __future__ import annotations

import hashlib
import itertools
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from local.meld_simulator.config import SimulatorConfig
from local.meld_simulator.tokens import Purpose, TokenClaims, TokenError, TokenIssuer, TokenProblem
from local.meld_simulator.webhooks import WebhookDispatcher, iso_timestamp

COMPLETED = "BANK_LINKING_CONNECTION_COMPLETED"
STATUS_CHANGE = "BANK_LINKING_CONNECTION_STATUS_CHANGE"
DELETED_EVENT = "BANK_LINKING_CONNECTION_DELETED"

# Meld answers 409 to a repair of these: the way out is a new connection. Kept separate from the app's own
# constant on purpose, so a mistake there is not mirrored here.
NOT_REPAIRABLE = frozenset({"EXPIRED", "DELETED", "IN_PROGRESS"})
# The reason a failed re-authentication leaves behind ("repair; retry later if it fails").
DEFAULT_FAILED_REPAIR_REASON = "REPAIRING_INSTITUTION"
DEFAULT_PRODUCTS = ("BALANCES", "IDENTIFIERS", "TRANSACTIONS")
DEFAULT_INSTITUTION_NAME = "Simulated Bank"
KNOWN_INSTITUTIONS = ("Simulated Bank", "Chase", "Wells Fargo", "Bank of America", "Citibank", "Capital One")
LIST_DEFAULT_LIMIT = 50
LIST_MAX_LIMIT = 100

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


_KEYS = itertools.count(1)


def new_id() -> str:
    """A Meld-looking id (22 base58 characters, like ``WQ4mBt3BEX2cmhCvSPyfTu``)."""
    return "".join(secrets.choice(_BASE58) for _ in range(22))


def stable_id(seed: str) -> str:
    """A Meld-looking id derived from ``seed``, so an institution has the same id in every run."""
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest())
    chars = []
    for _ in range(22):
        number, index = divmod(number, len(_BASE58))
        chars.append(_BASE58[index])
    return "".join(chars)


INSTITUTIONS_BY_ID: dict[str, str] = {stable_id(f"institution:{name}"): name for name in KNOWN_INSTITUTIONS}


def institution_id_for(name: str) -> str:
    return stable_id(f"institution:{name}")


class ApiError(Exception):
    """A Meld error response: HTTP status, Meld ``code``, message and details."""

    def __init__(self, status: int, code: str, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BAD_REQUEST", message, [message])


def not_found(connection_id: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"Connection {connection_id} not found")


@dataclass(slots=True)
class Connection:
    id: str
    customer_id: str
    external_customer_id: str
    institution_id: str | None
    institution_name: str | None
    status: str
    status_reason: str | None
    created_at: datetime
    provider_connection_id: str = field(default_factory=new_id)
    products: list[str] = field(default_factory=lambda: list(DEFAULT_PRODUCTS))
    optional_products: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=lambda: ["US"])
    successfully_aggregated_at: datetime | None = None

    # Meld's listing cursor: opaque, in creation order.
    key: str = field(default_factory=lambda: f"{next(_KEYS):016d}")

    def filterable(self, name: str) -> str | None:
        """A filterable field by its name in Meld's API."""
        return {
            "customerId": self.customer_id,
            "externalCustomerId": self.external_customer_id,
            "institutionId": self.institution_id,
        }[name]

    def provider_details(self) -> dict[str, Any]:
        return {"serviceProvider": "SIMULATED", "serviceProviderConnectionId": self.provider_connection_id}

    def to_json(self, account_id: str) -> dict[str, Any]:
        aggregated = self.successfully_aggregated_at
        return {
            "id": self.id,
            "key": self.key,
            "accountId": account_id,
            "customerId": self.customer_id,
            "externalCustomerId": self.external_customer_id,
            "institutionId": self.institution_id,
            "institutionName": self.institution_name,
            "status": self.status,
            "statusReason": self.status_reason,
            "products": list(self.products),
            "optionalProducts": list(self.optional_products),
            "regions": list(self.regions),
            "createdAt": iso_timestamp(self.created_at),
            "successfullyAggregatedAt": iso_timestamp(aggregated) if aggregated else None,
            "serviceProviderDetails": self.provider_details(),
            "duplicateConnectionIds": [],
            "activeDuplicateConnectionId": None,
        }


@dataclass(frozen=True, slots=True)
class WidgetContext:
    connection_id: str
    institution_name: str
    purpose: Purpose


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    return value


def _required_str(body: dict[str, Any], name: str) -> str:
    value = _optional_str(body, name)
    if not value:
        raise bad_request(f"{name} is required")
    return value


def _optional_str_list(body: dict[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise bad_request(f"{name} must be a list of strings")
    return list(value)


class MeldBackend:
    """All state lives here behind one lock; HTTP concerns live in ``api``."""

    def __init__(self, config: SimulatorConfig, webhooks: WebhookDispatcher) -> None:
        self._config = config
        self._webhooks = webhooks
        self._tokens = TokenIssuer(config.token_lifetime)
        self._lock = threading.RLock()
        self._connections: dict[str, Connection] = {}
        self._customers: dict[str, str] = {}
        self._used_tokens: set[str] = set()
        # Set by the server once the port is bound: widget URLs point back at this simulator.
        self.base_url = ""

    # --- Meld endpoints -------------------------------------------------------------------------------------------

    def start(self, body: dict[str, Any]) -> dict[str, Any]:
        external_id = _required_str(body, "externalCustomerId")
        institution_id = _optional_str(body, "institutionId")
        products = _optional_str_list(body, "products")
        optional_products = _optional_str_list(body, "optionalProducts")
        regions = _optional_str_list(body, "regions")
        with self._lock:
            now = self._now()
            connection = Connection(
                id=new_id(),
                customer_id=self._customer_id(external_id),
                external_customer_id=external_id,
                institution_id=institution_id,
                # Without an institutionId the customer picks one in the widget; Meld knows it only afterwards.
                institution_name=self._institution_name(institution_id) if institution_id else None,
                status="IN_PROGRESS",
                status_reason=None,
                created_at=now,
            )
            if products is not None:
                connection.products = products
            if optional_products is not None:
                connection.optional_products = optional_products
            if regions is not None:
                connection.regions = regions
            self._connections[connection.id] = connection
            token = self._issue(connection, "start", now)
            return {
                "id": connection.id,
                "connectToken": token,
                "customerId": connection.customer_id,
                "externalCustomerId": external_id,
                "widgetUrl": self._widget_url(token),
            }

    def repair(self, body: dict[str, Any]) -> dict[str, Any]:
        connection_id = _required_str(body, "connectionId")
        with self._lock:
            connection = self._get(connection_id)
            if connection.status in NOT_REPAIRABLE:
                raise ApiError(
                    409,
                    "CONFLICT",
                    f"Connection {connection_id} is {connection.status} and cannot be repaired; "
                    "start a new connection instead",
                )
            # The connection keeps its status while the customer is in the widget.
            token = self._issue(connection, "repair", self._now())
            return {
                "id": connection.id,
                "connectToken": token,
                "institutionId": connection.institution_id,
                "widgetUrl": self._widget_url(token),
            }

    def get(self, connection_id: str) -> dict[str, Any]:
        with self._lock:
            return self._get(connection_id).to_json(self._config.account_id)

    def list_connections(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """Meld's search: filters, then a page of ``limit`` after or before a connection's ``key`` (creation order)."""
        filters = {name: _query_value(query, name) for name in ("customerId", "externalCustomerId", "institutionId")}
        statuses_text = _query_value(query, "statuses")
        statuses = {part.strip() for part in statuses_text.split(",") if part.strip()} if statuses_text else None
        limit_text = _query_value(query, "limit")
        after, before = _query_value(query, "after"), _query_value(query, "before")
        try:
            limit = int(limit_text) if limit_text else LIST_DEFAULT_LIMIT
        except ValueError:
            raise bad_request("limit must be an integer") from None
        if not 1 <= limit <= LIST_MAX_LIMIT:
            raise bad_request(f"limit must be between 1 and {LIST_MAX_LIMIT}")
        if after and before:
            raise bad_request("use one cursor, after or before, not both")
        with self._lock:
            self._expire_stale()
            matching = [
                connection
                for connection in self._connections.values()
                if all(value is None or connection.filterable(name) == value for name, value in filters.items())
                and (statuses is None or connection.status in statuses)
                and (not after or connection.key > after)
                and (not before or connection.key < before)
            ]
            # Before a cursor, the page is the one just before it; what remains lies further back.
            page = matching[-limit:] if before else matching[:limit]
            return {
                "connections": [connection.to_json(self._config.account_id) for connection in page],
                "count": len(page),
                "remaining": len(matching) - len(page),
            }

    def delete(self, connection_id: str) -> dict[str, Any]:
        with self._lock:
            connection = self._get(connection_id)
            if connection.status == "DELETED":
                raise ApiError(409, "CONFLICT", f"Connection {connection_id} is already deleted")
            connection.status, connection.status_reason = "DELETED", None
            self._webhooks.send(DELETED_EVENT, self._payload(connection))
            return connection.to_json(self._config.account_id)

    # --- control endpoints ----------------------------------------------------------------------------------------

    def sim_create(self, body: dict[str, Any]) -> dict[str, Any]:
        external_id = _required_str(body, "externalCustomerId")
        institution_id = _optional_str(body, "institutionId")
        institution_name = _optional_str(body, "institutionName")
        status = _optional_str(body, "status") or "ACTIVE"
        reason = _optional_str(body, "statusReason")
        if institution_id and not institution_name:
            institution_name = self._institution_name(institution_id)
        institution_name = institution_name or DEFAULT_INSTITUTION_NAME
        with self._lock:
            now = self._now()
            connection = Connection(
                id=new_id(),
                customer_id=self._customer_id(external_id),
                external_customer_id=external_id,
                institution_id=institution_id or institution_id_for(institution_name),
                institution_name=institution_name,
                status=status,
                status_reason=reason,
                created_at=now,
                successfully_aggregated_at=now if status != "IN_PROGRESS" else None,
            )
            self._connections[connection.id] = connection
            if status != "IN_PROGRESS":
                # What Meld sends when a customer finishes the widget, with the move to the requested state.
                self._send_completion(connection, "IN_PROGRESS")
            return connection.to_json(self._config.account_id)

    def sim_set_status(self, connection_id: str, body: dict[str, Any]) -> dict[str, Any]:
        status = _required_str(body, "status")
        reason = _optional_str(body, "statusReason")
        with self._lock:
            connection = self._get(connection_id)
            old_status = connection.status
            connection.status, connection.status_reason = status, reason
            self._send_status_change(connection, old_status)
            return connection.to_json(self._config.account_id)

    def widget_context(self, token: str) -> WidgetContext:
        """What the widget page shows; raises ``ApiError`` (400) for a token the widget would refuse."""
        with self._lock:
            claims, connection = self._check_token(token)
            return WidgetContext(
                connection_id=connection.id,
                institution_name=connection.institution_name or DEFAULT_INSTITUTION_NAME,
                purpose=claims.purpose,
            )

    def widget_complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """The customer finished the widget: a start becomes ACTIVE, a repair succeeds or (``outcome: FAIL``) fails."""
        token = _required_str(body, "connectToken")
        outcome = (_optional_str(body, "outcome") or "SUCCESS").upper()
        if outcome not in {"SUCCESS", "FAIL"}:
            raise bad_request("outcome must be SUCCESS or FAIL")
        failed_reason = _optional_str(body, "statusReason") or DEFAULT_FAILED_REPAIR_REASON
        with self._lock:
            claims, connection = self._check_token(token)
            now = self._now()
            if claims.purpose == "start":
                if outcome == "FAIL":
                    raise bad_request("outcome FAIL applies to repair tokens only")
                if connection.status != "IN_PROGRESS":
                    raise ApiError(409, "CONFLICT", f"Connection {connection.id} is {connection.status}")
                if connection.institution_id is None:
                    connection.institution_name = DEFAULT_INSTITUTION_NAME
                    connection.institution_id = institution_id_for(DEFAULT_INSTITUTION_NAME)
            elif connection.status in NOT_REPAIRABLE:
                raise ApiError(409, "CONFLICT", f"Connection {connection.id} is {connection.status}")
            self._used_tokens.add(claims.jti)
            old_status = connection.status
            if outcome == "SUCCESS":
                connection.status, connection.status_reason = "ACTIVE", None
                connection.successfully_aggregated_at = now
            else:
                # The customer got through but the provider failed: same status, and the next reason says why.
                connection.status_reason = failed_reason
            self._send_completion(connection, old_status)
            return connection.to_json(self._config.account_id)

    def reset(self) -> None:
        with self._lock:
            self._connections.clear()
            self._customers.clear()
            self._used_tokens.clear()

    # --- helpers --------------------------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self._config.clock()

    def _get(self, connection_id: str) -> Connection:
        self._expire_stale()
        connection = self._connections.get(connection_id)
        if connection is None:
            raise not_found(connection_id)
        return connection

    def _expire_stale(self) -> None:
        """Meld expires a connection left IN_PROGRESS too long; done lazily, whenever state is read."""
        now = self._now()
        for connection in self._connections.values():
            if connection.status == "IN_PROGRESS" and now - connection.created_at >= self._config.in_progress_lifetime:
                connection.status = "EXPIRED"
                self._send_status_change(connection, "IN_PROGRESS")

    def _check_token(self, token: str) -> tuple[TokenClaims, Connection]:
        try:
            claims = self._tokens.parse(token, now=self._now())
        except TokenError as error:
            code = "CONNECT_TOKEN_EXPIRED" if error.problem is TokenProblem.EXPIRED else "INVALID_CONNECT_TOKEN"
            raise ApiError(400, code, error.message) from None
        if claims.jti in self._used_tokens:
            raise ApiError(400, "CONNECT_TOKEN_ALREADY_USED", "connectToken has already been used")
        self._expire_stale()
        connection = self._connections.get(claims.connection)
        if connection is None:
            # Only after a reset: the token was ours but its connection is gone.
            raise ApiError(400, "INVALID_CONNECT_TOKEN", "connectToken is not a valid token")
        return claims, connection

    def _customer_id(self, external_id: str) -> str:
        # One Meld customer per externalCustomerId, stable for the simulator's lifetime.
        return self._customers.setdefault(external_id, new_id())

    @staticmethod
    def _institution_name(institution_id: str) -> str:
        return INSTITUTIONS_BY_ID.get(institution_id, DEFAULT_INSTITUTION_NAME)

    def _issue(self, connection: Connection, purpose: Purpose, now: datetime) -> str:
        return self._tokens.issue(connection=connection.id, customer=connection.customer_id, purpose=purpose, now=now)

    def _widget_url(self, token: str) -> str:
        return f"{self.base_url}/widget?connectToken={token}"

    def _payload(self, connection: Connection) -> dict[str, Any]:
        return {
            "requestId": str(uuid.uuid4()),
            "customerId": connection.customer_id,
            "externalCustomerId": connection.external_customer_id,
            "connectionId": connection.id,
            "institutionId": connection.institution_id,
            "institutionName": connection.institution_name,
            "serviceProviderDetails": connection.provider_details(),
        }

    def _send_status_change(self, connection: Connection, old_status: str, *, stamp: datetime | None = None) -> None:
        payload = self._payload(connection)
        payload.update(newStatus=connection.status, oldStatus=old_status, statusReason=connection.status_reason)
        self._webhooks.send(STATUS_CHANGE, payload, stamp=stamp)

    def _send_completion(self, connection: Connection, old_status: str) -> None:
        """COMPLETED and the status change "in tandem": a millisecond apart, in the configured order."""
        now = self._now()
        apart = timedelta(milliseconds=1) if self._config.completed_stamped == "after" else -timedelta(milliseconds=1)
        self._webhooks.send(COMPLETED, self._payload(connection), stamp=now + apart)
        self._send_status_change(connection, old_status, stamp=now)


def _query_value(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None
