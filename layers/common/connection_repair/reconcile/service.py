"""Reconciliation: compare Meld's view of the connections with ours, and repair the difference.

Cost is bounded by what can have drifted. A drift run pages Meld's listing filtered by the statuses that need
attention, then reads individually only the connections we hold open that the listing did not return. A backfill run
pages every connection Meld has and imports what we never heard of. Each difference found goes through the path a
webhook takes (``ingestion.ingest``) as an observation stamped with the time of the read: deduplicated, ordered
against the connection's events (one older than the newest event changes nothing), announced once.

A run has a time budget. It stops between pages (and between individual reads) when the budget is spent or Meld
stays unavailable (the client honours 429 and ``Retry-After`` within its deadline), and stores where it stopped; the
next run of its mode continues from there under the same run id, so a page done twice applies nothing twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from connection_repair.domain.connection import Connection
from connection_repair.domain.status_policy import classify
from connection_repair.ingestion.ingest import EventIngestor, IngestOutcome
from connection_repair.ingestion.ports import MeldConnection
from connection_repair.platform.clock import Clock, utc_stamp
from connection_repair.platform.observability import logger
from connection_repair.reconcile.drift import LISTED_STATUSES, DriftKind, find_drift
from connection_repair.reconcile.observation import observation
from connection_repair.reconcile.ports import KnownConnections, MeldConnections, Mode, Progress, ProgressStore
from connection_repair.repair.ports import MeldFailure

# Meld's largest page.
PAGE_SIZE = 100


@dataclass
class Reconciliation:
    """What one invocation did."""

    mode: Mode
    run_id: str
    drift: Counter[DriftKind] = field(default_factory=Counter)
    imported: int = 0
    pages: int = 0
    checked: int = 0
    unknown_to_meld: int = 0
    # The run is over (its progress cleared); otherwise why it stopped: TIME_BUDGET or MELD_UNAVAILABLE.
    complete: bool = False
    stopped: str | None = None

    @property
    def meld_requests(self) -> int:
        return self.pages + self.checked


class _Stop(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Reconciler:
    def __init__(
        self,
        *,
        meld: MeldConnections,
        known: KnownConnections,
        progress: ProgressStore,
        events: EventIngestor,
        clock: Clock,
        reserve_seconds: float,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._meld = meld
        self._known = known
        self._progress = progress
        self._events = events
        self._clock = clock
        # Time kept back from the budget: one more Meld call with its retries, and writing where the run stopped.
        self._reserve_seconds = reserve_seconds
        self._page_size = page_size

    def run(self, mode: Mode, *, remaining_seconds: Callable[[], float]) -> Reconciliation:
        now = self._clock()
        progress = self._progress.load_progress(mode) or Progress(mode=mode, run_id=utc_stamp(now), started_at=now)
        outcome = Reconciliation(mode=mode, run_id=progress.run_id)
        # Connections the listing returned in this invocation: already compared, not read again one by one.
        listed: set[str] = set()
        try:
            while not progress.listing_done:
                self._check_time(remaining_seconds)
                progress = self._page(progress, outcome, listed)
                self._progress.save_progress(progress)
            for cursor, ours in self._known.open_connections(progress.open_after):
                if ours.connection_id not in listed:
                    self._check_time(remaining_seconds)
                    self._check_one(ours, progress, outcome)
                progress = progress.model_copy(update={"open_after": cursor})
        except _Stop as stop:
            outcome.stopped = stop.reason
            self._progress.save_progress(progress)
            logger.warning("Reconciliation stopped; the next run continues", mode=mode, reason=stop.reason)
            return outcome
        self._progress.clear_progress(mode)
        outcome.complete = True
        return outcome

    def _check_time(self, remaining_seconds: Callable[[], float]) -> None:
        if remaining_seconds() < self._reserve_seconds:
            raise _Stop("TIME_BUDGET")

    def _page(self, progress: Progress, outcome: Reconciliation, listed: set[str]) -> Progress:
        statuses = LISTED_STATUSES if progress.mode == Mode.DRIFT else None
        # Stamped before asking: a change Meld makes while answering is then newer than the observation, and its
        # webhook still applies when it arrives.
        observed_at = self._clock()
        try:
            page = self._meld.list_connections(statuses=statuses, limit=self._page_size, after=progress.listed_after)
        except MeldFailure as failure:
            raise _Stop("MELD_UNAVAILABLE") from failure
        outcome.pages += 1
        theirs = page.connections
        ours = self._known.get_connections([connection.connection_id for connection in theirs])
        for connection in theirs:
            listed.add(connection.connection_id)
            self._compare(ours.get(connection.connection_id), connection, observed_at, progress, outcome)
        last_key = theirs[-1].key if theirs else None
        more = page.remaining > 0 if page.remaining is not None else len(theirs) == self._page_size
        # A page that does not move the cursor would be read forever: the listing ends there.
        done = not theirs or last_key is None or last_key == progress.listed_after or not more
        return progress.model_copy(update={"listed_after": last_key or progress.listed_after, "listing_done": done})

    def _check_one(self, ours: Connection, progress: Progress, outcome: Reconciliation) -> None:
        observed_at = self._clock()
        try:
            theirs = self._meld.get_connection(ours.connection_id)
        except MeldFailure as failure:
            raise _Stop("MELD_UNAVAILABLE") from failure
        outcome.checked += 1
        if theirs is None:
            # Not a drift to act on: a wrong MeldApiBaseUrl would make every connection look deleted.
            outcome.unknown_to_meld += 1
            logger.warning("Connection held open is unknown to Meld", connection_id=ours.connection_id)
            return
        if find_drift(ours, theirs.status, theirs.status_reason) is not None:
            # The index may lag: compare with the connection as it is now.
            fresh = self._known.get_connections([ours.connection_id]).get(ours.connection_id)
            self._compare(fresh, theirs, observed_at, progress, outcome)

    def _compare(
        self,
        ours: Connection | None,
        theirs: MeldConnection,
        observed_at: datetime,
        progress: Progress,
        outcome: Reconciliation,
    ) -> None:
        if theirs.status is None:
            return  # nothing to compare (and without a status, an event would read as a completion)
        kind = find_drift(ours, theirs.status, theirs.status_reason)
        backfilled = ours is None and progress.mode == Mode.BACKFILL
        if kind is None and not backfilled:
            return
        result = self._events.ingest(*observation(theirs, observed_at, progress, kind))
        if result.outcome != IngestOutcome.ACCEPTED:
            return  # applied by an earlier invocation of this run, or a newer event got there first
        if backfilled:
            outcome.imported += 1
        elif kind is not None:
            outcome.drift[kind] += 1
            logger.info(
                "Drift repaired",
                kind=kind,
                connection_id=theirs.connection_id,
                status=theirs.status,
                action=classify(theirs.status, theirs.status_reason),
            )
