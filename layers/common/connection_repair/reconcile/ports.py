"""What reconciliation needs: Meld's view of the connections, ours, and where an unfinished run stopped."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel

from connection_repair.domain.connection import Connection
from connection_repair.ingestion.ports import MeldConnection


class ListedConnection(MeldConnection, Protocol):
    # Meld's listing cursor: opaque, in Meld's order.
    key: str | None


class ConnectionPage(Protocol):
    @property
    def connections(self) -> Sequence[ListedConnection]: ...

    @property
    def remaining(self) -> int | None:
        """How many connections follow this page (None: Meld did not say)."""
        ...


class MeldConnections(Protocol):
    """Meld's connections, read only. Every method raises ``MeldFailure`` when Meld does not answer."""

    def list_connections(self, *, statuses: Sequence[str] | None, limit: int, after: str | None) -> ConnectionPage:
        """One page of Meld's search, after the connection whose key is ``after`` (None: from the start)."""
        ...

    def get_connection(self, connection_id: str) -> MeldConnection | None:
        """The connection as Meld has it; None when Meld does not know it."""
        ...


class KnownConnections(Protocol):
    """Our connections, as reconciliation reads them."""

    def get_connections(self, connection_ids: Sequence[str]) -> dict[str, Connection]:
        """The stored ones among ``connection_ids``, read consistently."""
        ...

    def open_connections(self, after: str | None) -> Iterator[tuple[str, Connection]]:
        """Every connection with an open episode or a repair pending, each with the cursor that resumes after it."""
        ...


class Mode(StrEnum):
    # Hourly: what needs attention at Meld, and what we hold open.
    DRIFT = "drift"
    # On adoption: every connection Meld has.
    BACKFILL = "backfill"


class Progress(BaseModel):
    """Where an unfinished run stopped; the next run of its mode continues from here."""

    mode: Mode
    run_id: str
    started_at: datetime
    # The listing: the key of the last connection of the last page done, and whether the listing is done.
    listed_after: str | None = None
    listing_done: bool = False
    # The open connections: the cursor of the last one checked.
    open_after: str | None = None


class ProgressStore(Protocol):
    def load_progress(self, mode: Mode) -> Progress | None: ...

    def save_progress(self, progress: Progress) -> None: ...

    def clear_progress(self, mode: Mode) -> None: ...
