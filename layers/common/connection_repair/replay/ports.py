"""What a replay reads besides the connection store: the connection's stored events, and which connections had any."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

from connection_repair.outbox.ports import StoredEvent


class ConnectionHistory(Protocol):
    def events_of(self, connection_id: str) -> list[StoredEvent]:
        """Every stored event of the connection (all types), oldest first."""
        ...

    def connections_with_events_since(self, since: datetime) -> Iterator[str]:
        """Each connection that received a stored event at or after ``since``, once."""
        ...
