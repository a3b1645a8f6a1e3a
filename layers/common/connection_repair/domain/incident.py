"""A bank's outage, seen in its connections: many of one institution breaking together, or Meld saying the
institution itself is the problem. The customers can do nothing about it yet, so their first messages wait."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field

from connection_repair.domain.base import CamelModel

# Meld's reasons that blame the institution or the provider, not the customer's credentials.
INSTITUTION_REASONS: frozenset[str] = frozenset(
    {"REPAIRING_INSTITUTION", "INSTITUTION_CURRENTLY_UNAVAILABLE", "SERVICE_PROVIDER_CURRENTLY_UNAVAILABLE"}
)


def institution_level(reason: str | None) -> bool:
    return reason is not None and (reason in INSTITUTION_REASONS or reason.endswith("_CURRENTLY_UNAVAILABLE"))


class Trigger(StrEnum):
    SURGE = "SURGE"  # at least the threshold of the institution's connections broke within the window
    INSTITUTION_REASON = "INSTITUTION_REASON"  # Meld named the institution as the cause


@dataclass(frozen=True)
class IncidentPolicy:
    min_connections: int = 25
    share_percent: float = 20.0
    window: timedelta = timedelta(minutes=15)
    hold: timedelta = timedelta(hours=6)

    def threshold(self, connections: int) -> int:
        """Breaks within the window that make an incident, for an institution with ``connections`` known."""
        return max(self.min_connections, math.ceil(self.share_percent / 100 * connections))


class InstitutionIncident(CamelModel):
    """One incident of one institution; ``broken`` counts its connections that broke from ``counted_from`` on and
    are not repaired. It ends when ``broken`` falls below ``threshold`` (for an institution-level reason: when none is
    left)."""

    institution_id: str
    institution_name: str | None = None
    trigger: Trigger
    since: datetime
    counted_from: datetime
    hold_until: datetime
    broken: int
    threshold: int
    connections: int
    ended_at: datetime | None = None
    # The bus was told of the latest change (the start; once ended, the end): kept with the incident, not sent.
    announced: bool = Field(False, exclude=True)

    @property
    def active(self) -> bool:
        return self.ended_at is None

    @property
    def end_below(self) -> int:
        return 1 if self.trigger == Trigger.INSTITUTION_REASON else self.threshold

    def covers(self, attention_since: datetime) -> bool:
        """An episode that started since the breaks this incident counts belongs to it."""
        return attention_since >= self.counted_from

    def holds(self, attention_since: datetime, now: datetime) -> bool:
        """Whether the first message of an episode that started at ``attention_since`` waits at ``now``."""
        return self.active and self.covers(attention_since) and now < self.hold_until


class InstitutionIncidentStarted(InstitutionIncident):
    DETAIL_TYPE: ClassVar[str] = "Institution Incident Started"
    kind: Literal["incident_started"] = "incident_started"
    # The contract's version (docs/events/).
    version: Literal[1] = 1

    @property
    def detail_type(self) -> str:
        return self.DETAIL_TYPE

    @property
    def event_time(self) -> datetime:
        return self.since


class InstitutionIncidentEnded(InstitutionIncident):
    DETAIL_TYPE: ClassVar[str] = "Institution Incident Ended"
    kind: Literal["incident_ended"] = "incident_ended"
    # The contract's version (docs/events/).
    version: Literal[1] = 1

    @property
    def detail_type(self) -> str:
        return self.DETAIL_TYPE

    @property
    def event_time(self) -> datetime:
        return self.ended_at or self.since
