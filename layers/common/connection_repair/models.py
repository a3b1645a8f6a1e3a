"""Domain models: what Meld sends, what we keep, and what we announce.

Boundary models use Meld's camelCase on the wire (aliases) and snake_case in code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from connection_repair.status_policy import Action


class CamelModel(BaseModel):
    # defer_build: a model's validator is built when first used, so a cold start pays only for what it touches.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True, defer_build=True
    )


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


class ConnectionChange(BaseModel):
    """What one connection webhook says about a connection."""

    model_config = ConfigDict(defer_build=True)

    connection_id: str
    customer_id: str | None = None
    external_customer_id: str | None = None
    institution_id: str | None = None
    institution_name: str | None = None
    status: str | None = None
    status_reason: str | None = None
    previous_status: str | None = None
    # The customer finished the widget (BANK_LINKING_CONNECTION_COMPLETED): after a repair, the verdict on it.
    completed: bool = False

    @classmethod
    def from_webhook(cls, webhook: MeldWebhook) -> ConnectionChange | None:
        """Read the change out of a connection event; None when the payload names no connection."""
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
        return cls(
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


class Connection(CamelModel):
    """A bank connection as we last saw it, with the customer's action and the open episode, if any."""

    connection_id: str
    external_customer_id: str | None = None
    customer_id: str | None = None
    institution_id: str | None = None
    institution_name: str | None = None
    status: str | None = None
    status_reason: str | None = None
    action: Action = Action.WAIT
    # Ordering: (last_event_at, last_event_id) of the newest event applied.
    last_event_at: datetime | None = None
    last_event_id: str | None = None
    # The open needs-attention episode.
    episode_id: str | None = None
    episode_action: Action | None = None
    attention_since: datetime | None = None
    # Repair attempts made through the API during the open episode.
    repair_attempts: int = 0
    last_repair_at: datetime | None = None
    # A repair token was issued and no completion has judged it yet (docs/decisions.md, failed repairs).
    repair_pending: bool = False
    # Completions that left the connection needing a repair; reset once it works again.
    failed_repairs: int = 0
    # Replacement (POST /connections with replacesConnectionId): set on the new connection until it completes...
    replaces_connection_id: str | None = None
    # ...and on the old one once it has been retired in favour of the new one.
    superseded_by: str | None = None
    # Optimistic-concurrency counter, bumped on every write.
    version: int = 0

    @property
    def needs_attention(self) -> bool:
        return self.episode_id is not None


def event_order_key(event_time: datetime, event_id: str) -> str:
    """A string that sorts like ``(event_time, event_id)``: fixed-width UTC time, then the id."""
    return f"{event_time.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{event_id}"


class DownstreamEvent(CamelModel):
    """An event put on the app's EventBridge bus."""

    DETAIL_TYPE: ClassVar[str]

    connection_id: str
    external_customer_id: str | None
    institution_id: str | None
    institution_name: str | None
    status: str | None
    status_reason: str | None
    action: Action
    episode_id: str
    event_time: datetime

    @property
    def detail_type(self) -> str:
        return self.DETAIL_TYPE


class ConnectionNeedsAttention(DownstreamEvent):
    DETAIL_TYPE: ClassVar[str] = "Connection Needs Attention"
    kind: Literal["needs_attention"] = "needs_attention"
    attention_since: datetime


class ConnectionRepaired(DownstreamEvent):
    """The episode ended: the connection is usable again, or is gone (then ``resolution`` says so)."""

    DETAIL_TYPE: ClassVar[str] = "Connection Repaired"
    kind: Literal["repaired"] = "repaired"
    # REPAIR_FAILED: repairs kept failing, the customer is to start a new connection instead.
    resolution: Literal["REPAIRED", "DELETED", "EXPIRED", "SUPERSEDED", "REPAIR_FAILED"]
    attention_since: datetime


class ConnectionReplaced(CamelModel):
    """A connection started to replace another has completed: the old one is to be deleted and retired."""

    DETAIL_TYPE: ClassVar[str] = "Connection Replaced"
    kind: Literal["replaced"] = "replaced"

    connection_id: str
    replaced_connection_id: str
    external_customer_id: str | None
    event_time: datetime

    @property
    def detail_type(self) -> str:
        return self.DETAIL_TYPE


AnyDownstreamEvent = ConnectionNeedsAttention | ConnectionRepaired | ConnectionReplaced


class StoredEvent(BaseModel):
    """A verified webhook as stored for audit and dedupe."""

    model_config = ConfigDict(defer_build=True)

    event_id: str
    event_type: str
    event_time: datetime
    connection_id: str | None
    received_at: datetime
    retry_count: int
    raw_body: str
    # Downstream events written with the state change and not yet confirmed published (the outbox).
    pending: list[AnyDownstreamEvent] = Field(default_factory=list)
