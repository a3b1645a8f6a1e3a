"""What one notifier invocation did: the handler turns it into metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


class DeliveryFailed(Exception):
    """Every channel failed for a message; its claims were released and it stays due."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(f"{outcome.failures} message(s) failed to send")
        self.outcome = outcome


@dataclass
class Outcome:
    """What an invocation did; the handler turns it into metrics."""

    messages_sent: int = 0
    sent_by_channel: Counter[str] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)
    deferred: Counter[str] = field(default_factory=Counter)
    channel_failures: int = 0
    failures: int = 0
    # Messages the deployment's templates could not make, sent with the project's own.
    template_fallbacks: int = 0
    # Episodes that ended: (resolution, seconds from episode start, reminders sent before the end).
    ended: list[tuple[str, float, int]] = field(default_factory=list)
    items_read: int = 0
    # Customers a sweep left for the next one: its time was running out.
    customers_left: int = 0
    # How long the oldest message a sweep found due had been waiting (0 when nothing was due).
    oldest_due_seconds: float = 0.0
    # Institution incidents this invocation started and ended (STARTED, ENDED).
    incidents: Counter[str] = field(default_factory=Counter)

    def merge(self, other: Outcome) -> None:
        self.messages_sent += other.messages_sent
        self.sent_by_channel.update(other.sent_by_channel)
        self.suppressed.update(other.suppressed)
        self.deferred.update(other.deferred)
        self.channel_failures += other.channel_failures
        self.failures += other.failures
        self.template_fallbacks += other.template_fallbacks
        self.ended.extend(other.ended)
        self.items_read += other.items_read
        self.incidents.update(other.incidents)
