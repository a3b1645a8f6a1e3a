"""Time as the layer reads and writes it: an injectable clock and one fixed-width UTC format."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

# Every use case takes one, so tests can set the time.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_stamp(moment: datetime) -> str:
    """Fixed-width UTC time to the microsecond: sorts as text the way the times sort (keys, order keys)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
