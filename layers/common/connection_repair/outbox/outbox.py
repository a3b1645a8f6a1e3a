"""The outbox: downstream events stored with the state change that caused them, published after the commit.

A stored event's ``pending`` list is put on the bus and then cleared. Whoever later finds it still pending (Meld's
retried delivery, Lambda's retried invocation) takes the publishing lease and publishes it, so nothing committed is
lost; a live lease means another delivery is publishing right now. See docs/decisions.md §5.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from connection_repair.domain.bus_events import AnyDownstreamEvent
from connection_repair.outbox.ports import EventPublisher, OutboxStore

# How long a delivery may take to publish its outbox before another delivery may take over.
PUBLISH_LEASE = timedelta(seconds=15)
# How long a delivery that finds the lease taken waits for the holder to finish.
HOLDER_WAIT_SECONDS = 2.0


class DeliveryInProgress(Exception):
    """Another delivery of the same event holds the publishing lease: retry later."""


class Outbox:
    def __init__(
        self,
        store: OutboxStore,
        publisher: EventPublisher,
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic

    def lease_until(self) -> datetime:
        """The lease a writer takes when it stores an outbox (read at call time: tests shorten it)."""
        return self._clock() + PUBLISH_LEASE

    def publish(self, event_id: str, events: Sequence[AnyDownstreamEvent]) -> int:
        """Put ``event_id``'s freshly committed outbox on the bus, then clear it."""
        if not events:
            return 0
        self._publisher.publish(events)
        self._store.clear_pending(event_id)
        return len(events)

    def flush(self, event_id: str) -> int:
        """Publish what ``event_id`` still has pending, if anything; raise ``DeliveryInProgress`` while another
        delivery holds the lease (after waiting briefly for it), so the caller is retried rather than acknowledged."""
        deadline = self._monotonic() + HOLDER_WAIT_SECONDS
        while True:
            existing = self._store.get_event(event_id)
            if existing is None or not existing.pending:
                return 0
            now = self._clock()
            claimed = self._store.claim_pending(event_id, now=now, lease_until=now + PUBLISH_LEASE)
            if claimed:
                return self.publish(event_id, claimed)
            if self._monotonic() >= deadline:
                raise DeliveryInProgress(event_id)
            self._sleep(0.05)
