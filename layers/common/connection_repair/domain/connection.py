"""A bank connection as we keep it, what one event says about it, and the order events apply in."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from connection_repair.domain.base import CamelModel
from connection_repair.domain.status_policy import Action
from connection_repair.platform.clock import utc_stamp


class ConnectionChange(BaseModel):
    """What one connection webhook says about a connection."""

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

    @property
    def carries_status(self) -> bool:
        """STATUS_CHANGE and DELETED do, and are ordered among themselves; a completion does not, and is not."""
        return self.status is not None


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
    # Ordering: (last_event_at, last_event_id) of the newest status-bearing event applied (STATUS_CHANGE, DELETED).
    # A completion carries no status and is not ordered against them (Meld stamps the two in either order).
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
    # The customer completed the widget after the attempt; the next status event is the verdict on it.
    completed_at: datetime | None = None
    # Completions that left the connection needing a repair; reset once it works again.
    failed_repairs: int = 0
    # Replacement (POST /connections with replacesConnectionId): set on the new connection until it completes...
    replaces_connection_id: str | None = None
    # ...and on the old one once it has been replaced by the new one.
    superseded_by: str | None = None
    # Optimistic-concurrency counter, bumped on every write.
    version: int = 0

    @property
    def needs_attention(self) -> bool:
        return self.episode_id is not None


def event_order_key(event_time: datetime, event_id: str) -> str:
    """A string that sorts like ``(event_time, event_id)``: fixed-width UTC time, then the id."""
    return f"{utc_stamp(event_time)}#{event_id}"
