"""What a difference between Meld's view and ours means."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connection_repair.domain.connection import Connection
from connection_repair.domain.status_policy import KNOWN_REASONS, KNOWN_STATUSES, NEEDS_ATTENTION, Action, classify
from connection_repair.reconcile.drift import LISTED_STATUSES, DriftKind, find_drift

SINCE = datetime(2026, 11, 25, 12, tzinfo=UTC)


def ours(status: str, reason: str | None = None, **state: object) -> Connection:
    return Connection(connection_id="conn-1", status=status, status_reason=reason, **state)  # type: ignore[arg-type]


OPEN = {"episode_id": "ep-1", "episode_action": Action.REPAIR, "attention_since": SINCE}


@pytest.mark.parametrize(
    ("held", "status", "reason", "expected"),
    [
        (None, "RECONNECT_REQUIRED", "LOGIN_REQUIRED", DriftKind.UNKNOWN_CONNECTION),
        (None, "DEGRADED", "INTERACTIVE_REFRESH", DriftKind.UNKNOWN_CONNECTION),
        (None, "DEGRADED", "INSTITUTION_CURRENTLY_UNAVAILABLE", None),  # nothing for the customer to do
        (None, "ACTIVE", None, None),
        (ours("ACTIVE"), "RECONNECT_REQUIRED", "LOGIN_REQUIRED", DriftKind.MISSED_BREAK),
        (ours("ACTIVE"), "ACTIVE", "ACCESS_EXPIRING_SOON", DriftKind.MISSED_BREAK),
        (ours("ACTIVE"), "ACTIVE", None, None),
        (ours("RECONNECT_REQUIRED", "LOGIN_REQUIRED", **OPEN), "RECONNECT_REQUIRED", "LOGIN_REQUIRED", None),
        # Both need a repair: the episode already asks for it.
        (ours("RECONNECT_REQUIRED", "LOGIN_REQUIRED", **OPEN), "UNRECOVERABLE", None, None),
        (ours("RECONNECT_REQUIRED", "LOGIN_REQUIRED", **OPEN), "ACTIVE", None, DriftKind.MISSED_REPAIR),
        (ours("RECONNECT_REQUIRED", "LOGIN_REQUIRED", **OPEN), "DELETED", None, DriftKind.MISSED_REPAIR),
        (
            ours("RECONNECT_REQUIRED", "LOGIN_REQUIRED", **OPEN),
            "DEGRADED",
            "SERVICE_PROVIDER_CURRENTLY_UNAVAILABLE",
            None,
        ),
        (ours("RECONNECT_REQUIRED", repair_pending=True), "ACTIVE", None, DriftKind.MISSED_REPAIR),
        (ours("DEGRADED", "INSTITUTION_CURRENTLY_UNAVAILABLE"), "ACTIVE", None, None),  # nothing was open
        (ours("RECONNECT_REQUIRED", superseded_by="conn-2"), "ACTIVE", None, None),  # retired: its deletion runs
    ],
)
def test_find_drift(held: Connection | None, status: str, reason: str | None, expected: DriftKind | None) -> None:
    assert find_drift(held, status, reason) == expected


def test_the_listing_asks_for_every_status_but_active_in_which_a_repair_can_be_asked() -> None:
    can_need_attention = {
        status
        for status in KNOWN_STATUSES
        for reason in (*KNOWN_REASONS, None)
        if classify(status, reason) in NEEDS_ATTENTION
    }
    assert set(LISTED_STATUSES) == can_need_attention - {"ACTIVE"}
