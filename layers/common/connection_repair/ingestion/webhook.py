"""Meld's webhook envelope: parsing a verified body, and what a connection event says about its connection."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import AwareDatetime, ConfigDict, Field, ValidationError

from connection_repair.domain.base import CamelModel
from connection_repair.domain.connection import ConnectionChange


class MeldWebhook(CamelModel):
    """Meld's webhook envelope. Unknown fields are kept: other Meld products share the endpoint."""

    model_config = ConfigDict(extra="allow")

    event_id: str = Field(min_length=1, max_length=256)
    event_type: str = Field(min_length=1, max_length=256)
    timestamp: AwareDatetime
    account_id: str | None = None
    profile_id: str | None = None
    version: str | None = None
    payload: Any = None


class EventType:
    COMPLETED = "BANK_LINKING_CONNECTION_COMPLETED"
    STATUS_CHANGE = "BANK_LINKING_CONNECTION_STATUS_CHANGE"
    DELETED = "BANK_LINKING_CONNECTION_DELETED"

    # The event types that move a connection's state; everything else is stored for audit only.
    CONNECTION_STATE: ClassVar[frozenset[str]] = frozenset({COMPLETED, STATUS_CHANGE, DELETED})


def _first(payload: dict[str, Any], *names: str) -> str | None:
    """The first non-empty string among ``names`` (Meld's field names vary by API version)."""
    for name in names:
        value = payload.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def connection_change(webhook: MeldWebhook) -> ConnectionChange | None:
    """What a connection event says about its connection; None when its payload names no connection."""
    payload = webhook.payload
    if not isinstance(payload, dict):
        return None
    connection_id = _first(payload, "connectionId", "id")
    if connection_id is None:
        return None
    status = _first(payload, "newStatus", "status")
    reason = _first(payload, "statusReason", "newStatusReason", "reason")
    if webhook.event_type == EventType.DELETED:
        status, reason = "DELETED", None
    return ConnectionChange(
        connection_id=connection_id,
        customer_id=_first(payload, "customerId"),
        external_customer_id=_first(payload, "externalCustomerId"),
        institution_id=_first(payload, "institutionId"),
        institution_name=_first(payload, "institutionName"),
        status=status,
        status_reason=reason,
        previous_status=_first(payload, "oldStatus", "previousStatus"),
        completed=webhook.event_type == EventType.COMPLETED,
    )


class InvalidWebhook(Exception):
    """A correctly signed body that is not a Meld event."""


def named_connection(webhook: MeldWebhook) -> str | None:
    """The connection an event of any type names (transactions, accounts): it is listed with that connection's
    events, though it changes nothing of it."""
    payload = webhook.payload
    return _first(payload, "connectionId") if isinstance(payload, dict) else None


def parse_webhook(raw_body: bytes) -> MeldWebhook:
    try:
        document = json.loads(raw_body.decode())
    except ValueError:  # UnicodeDecodeError and JSONDecodeError both are
        raise InvalidWebhook("body is not valid UTF-8 JSON") from None
    if not isinstance(document, dict):
        raise InvalidWebhook("body must be a JSON object")
    try:
        return MeldWebhook.model_validate(document)
    except ValidationError as error:
        fields = ", ".join(sorted({str(issue["loc"][0]) for issue in error.errors() if issue["loc"]}))
        raise InvalidWebhook(f"missing or invalid fields: {fields}") from None


SENSITIVE_FIELD = "serviceProviderDetails"


def stored_body(raw_body: bytes) -> str:
    """The body as it is kept: as received, except that ``serviceProviderDetails`` (it can hold the provider's access
    tokens) is reduced to the provider's name, wherever it appears. ``raw_body`` is UTF-8 JSON (``parse_webhook``)."""
    text = raw_body.decode()
    document = json.loads(text)
    return json.dumps(document, separators=(",", ":")) if _redact(document) else text


def _redact(value: object) -> bool:
    """Reduce every ``serviceProviderDetails`` in ``value`` to ``{"serviceProvider": name}``; whether any was found."""
    found = False
    if isinstance(value, dict):
        for key, inner in list(value.items()):
            if key == SENSITIVE_FIELD:
                provider = inner.get("serviceProvider") if isinstance(inner, dict) else None
                value[key] = {"serviceProvider": provider} if isinstance(provider, str) else {}
                found = True
            else:
                found = _redact(inner) or found
    elif isinstance(value, list):
        for inner in value:
            found = _redact(inner) or found
    return found
