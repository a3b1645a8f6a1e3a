"""The outbox sweep: publish what a delivery stored and nobody published, on a schedule.

An outbox is normally emptied by the delivery that wrote it, or by Meld's retry of that delivery. It is stranded when
neither comes: Meld gave up, the state was read back by reconciliation (nobody retries that), or the replacer's retry
budget ran out. Pending outboxes are a sparse index; the sweep takes each one whose publishing lease has lapsed and
publishes it as a retried delivery would (``Outbox.flush``: the same lease, nothing published twice at once), and
reports the age of the oldest one left, which an alarm watches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from connection_repair.outbox.outbox import DeliveryInProgress, Outbox
from connection_repair.outbox.ports import EventPublisher, PendingOutboxes, PublishFailed
from connection_repair.platform.clock import Clock
from connection_repair.platform.observability import logger


@dataclass
class SweepOutcome:
    # Stored events whose outbox this sweep published, and the downstream events that went out.
    flushed: int = 0
    published: int = 0
    # Outboxes still pending after the sweep (in flight, the bus refusing, or no time left), and the oldest one's age.
    pending: int = 0
    oldest_pending_seconds: float = 0.0


class OutboxSweep:
    def __init__(
        self,
        *,
        store: PendingOutboxes,
        publisher: EventPublisher,
        clock: Clock,
        reserve_seconds: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._outbox = Outbox(store, publisher, clock=clock, sleep=sleep)
        self._clock = clock
        self._reserve_seconds = reserve_seconds

    def run(self, *, remaining_seconds: Callable[[], float]) -> SweepOutcome:
        outcome = SweepOutcome()
        now = self._clock()
        oldest: datetime | None = None
        bus_refusing = False
        for pending in self._store.pending_outboxes():
            # A lease still running at "now" cannot be taken (the claim needs it lapsed): its holder publishes.
            stays = bus_refusing or pending.lease_until >= now or remaining_seconds() < self._reserve_seconds
            if not stays:
                try:
                    published = self._outbox.flush(pending.event_id)
                except DeliveryInProgress:
                    stays = True
                except PublishFailed:
                    # The bus refuses: the rest waits for the next sweep (the alarm watches their age).
                    logger.warning("Outbox sweep: the bus refused; the rest waits", event_id=pending.event_id)
                    stays = bus_refusing = True
                else:
                    outcome.flushed += 1 if published else 0
                    outcome.published += published
            if stays:
                outcome.pending += 1
                oldest = pending.received_at if oldest is None else min(oldest, pending.received_at)
        if oldest is not None:
            outcome.oldest_pending_seconds = max(0.0, (now - oldest).total_seconds())
        return outcome
