"""The outbox's records and ports: the stored event that carries it, its store, the bus it goes to."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, Field

from connection_repair.domain.bus_events import AnyDownstreamEvent


class StoredEvent(BaseModel):
    """A verified webhook as stored for audit and dedupe."""

    event_id: str
    event_type: str
    event_time: datetime
    connection_id: str | None
    received_at: datetime
    retry_count: int
    raw_body: str
    # Downstream events written with the state change and not yet confirmed published (the outbox).
    pending: list[AnyDownstreamEvent] = Field(default_factory=list)


class OutboxStore(Protocol):
    """The stored events that carry an outbox."""

    def get_event(self, event_id: str) -> StoredEvent | None: ...

    def claim_pending(self, event_id: str, *, now: datetime, lease_until: datetime) -> list[AnyDownstreamEvent]:
        """Take the publishing lease of an event whose outbox is not empty and whose lease has lapsed.

        Returns the pending events, or an empty list when there is nothing to take (or someone holds it).
        """
        ...

    def clear_pending(self, event_id: str) -> None: ...


class PendingOutbox(BaseModel):
    """A stored event whose outbox is not published yet."""

    event_id: str
    received_at: datetime
    # Someone is publishing it until then (a delivery, a retry, a sweep).
    lease_until: datetime


class PendingOutboxes(OutboxStore, Protocol):
    def pending_outboxes(self) -> Iterator[PendingOutbox]:
        """Every stored event whose outbox is not cleared (a sparse index: nothing else is read)."""
        ...


class EventPublisher(Protocol):
    def publish(self, events: Sequence[AnyDownstreamEvent]) -> None:
        """Put every event on the bus; raise ``PublishFailed`` unless all were accepted."""
        ...


class PublishFailed(Exception):
    """Some downstream events were not accepted by the bus."""
