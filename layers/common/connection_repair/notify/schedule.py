"""When an episode's messages are due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from connection_repair.domain.status_policy import Action

# A message every channel refused for now is tried again after 0, 1, 2, 4 … minutes, at most 6 h apart; after this
# many failed deliveries (about a day and a half) it is given up, counted.
MAX_DELIVERY_ATTEMPTS = 16
MAX_RETRY_DELAY = timedelta(hours=6)


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed delivery of one message."""
    if attempts <= 1:
        return timedelta(0)
    return min(timedelta(minutes=2 ** (attempts - 2)), MAX_RETRY_DELAY)


def not_before(due: datetime | None, now: datetime) -> datetime | None:
    """A due time is never written in the past: past days of the due list only ever empty (the sweep relies on it)."""
    return None if due is None else max(due, now)


@dataclass(frozen=True)
class ReminderSchedule:
    """When an episode's messages are due, counted from the start of the episode."""

    reminder_offsets: tuple[timedelta, ...] = (timedelta(days=1), timedelta(days=3))
    # The first message waits this long so that connections breaking together go out as one message.
    digest_window: timedelta = timedelta(minutes=5)

    def messages_for(self, action: Action) -> int:
        # NEW_ACCOUNTS_AVAILABLE is optional for the customer, and "link again" is said once: no reminders.
        return 1 if action in (Action.ADD_ACCOUNTS, Action.START_NEW_CONNECTION) else 1 + len(self.reminder_offsets)

    def due_at(self, attention_since: datetime, number: int, action: Action) -> datetime | None:
        if number >= self.messages_for(action):
            return None
        first = attention_since + self.digest_window
        # Reminders count from the first message: "after 1 day" is a day after the customer was told.
        return first if number == 0 else first + self.reminder_offsets[number - 1]
