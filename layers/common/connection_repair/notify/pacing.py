"""The notifier's send rate: at most so many sends a second on each channel, summed over every invocation.

Each send takes one of its second's sends from a counter shared by all invocations; when the second is used up, the
send waits for the next one, a few seconds at most, and is otherwise deferred (the rate is the account's quota: SES
and SNS refuse what goes faster).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from connection_repair.notify.ports import SendCounter
from connection_repair.platform.clock import Clock
from connection_repair.preferences.model import Channel

# How long one send waits for room in the rate before it is deferred.
MAX_WAIT = timedelta(seconds=5)


class SendPacer:
    def __init__(
        self,
        counter: SendCounter | None,
        per_second: int | None,
        *,
        clock: Clock = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._counter = counter
        self._per_second = per_second
        self._clock = clock
        self._sleep = sleep

    def take(self, channels: Sequence[Channel]) -> bool:
        """Room for one send on each of ``channels``, waiting for it a little; False when the rate stays used up."""
        if self._counter is None or not self._per_second:
            return True
        deadline = self._clock() + MAX_WAIT
        for channel in channels:
            while True:
                now = self._clock()
                second = now.replace(microsecond=0)
                if self._counter.take(channel, second, self._per_second):
                    break
                following = second + timedelta(seconds=1)
                if following > deadline:
                    return False
                self._sleep((following - now).total_seconds())
        return True


UNPACED = SendPacer(None, None)
