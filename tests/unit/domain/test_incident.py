"""What makes an incident: the threshold, the reasons that blame the institution, what its hold covers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connection_repair.domain.incident import IncidentPolicy, InstitutionIncident, Trigger, institution_level

T0 = datetime(2026, 12, 4, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("reason", "blames_the_institution"),
    [
        ("REPAIRING_INSTITUTION", True),
        ("INSTITUTION_CURRENTLY_UNAVAILABLE", True),
        ("SERVICE_PROVIDER_CURRENTLY_UNAVAILABLE", True),
        ("AGGREGATOR_CURRENTLY_UNAVAILABLE", True),  # a reason Meld may add: the suffix says it
        ("LOGIN_REQUIRED", False),
        ("TOKEN_EXPIRED", False),
        (None, False),
    ],
)
def test_reasons_that_blame_the_institution(reason: str | None, blames_the_institution: bool) -> None:
    assert institution_level(reason) is blames_the_institution


@pytest.mark.parametrize(
    ("connections", "threshold"), [(0, 25), (100, 25), (125, 25), (126, 26), (1000, 200), (10_000, 2000)]
)
def test_the_threshold_is_the_larger_of_the_minimum_and_the_share(connections: int, threshold: int) -> None:
    assert IncidentPolicy().threshold(connections) == threshold


def test_the_hold_covers_episodes_since_the_window_until_the_hold_ends() -> None:
    incident = InstitutionIncident(
        institution_id="inst-chase",
        trigger=Trigger.SURGE,
        since=T0,
        counted_from=T0 - timedelta(minutes=15),
        hold_until=T0 + timedelta(hours=6),
        broken=30,
        threshold=25,
        connections=100,
    )
    assert incident.holds(T0 - timedelta(minutes=15), T0)
    assert not incident.holds(T0 - timedelta(minutes=15, microseconds=1), T0)
    assert incident.holds(T0, T0 + timedelta(hours=6) - timedelta(microseconds=1))
    assert not incident.holds(T0, T0 + timedelta(hours=6))
    assert not incident.model_copy(update={"ended_at": T0 + timedelta(hours=1)}).holds(T0, T0 + timedelta(hours=2))
    assert incident.end_below == 25
    assert incident.model_copy(update={"trigger": Trigger.INSTITUTION_REASON}).end_below == 1
