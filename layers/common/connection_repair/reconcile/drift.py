"""What a difference between Meld's view of a connection and ours means. Pure functions."""

from __future__ import annotations

from enum import StrEnum

from connection_repair.domain.connection import Connection
from connection_repair.domain.status_policy import ENDS_EPISODE, NEEDS_ATTENTION, classify

# The statuses the hourly listing asks Meld for: those in which a customer can be asked to repair. ACTIVE's soft
# prompts (renew access, add accounts) are left out on purpose: asking for ACTIVE would page nearly every connection.
# A backfill reads every status.
LISTED_STATUSES: tuple[str, ...] = (
    "CUSTOMER_ACTION_REQUIRED",
    "DEGRADED",
    "RECONNECT_AVAILABLE",
    "RECONNECT_REQUIRED",
    "UNRECOVERABLE",
)


class DriftKind(StrEnum):
    # We hold it as fine; Meld says the customer must act.
    MISSED_BREAK = "MissedBreak"
    # We hold an episode open (or a repair pending); Meld has it working again, or gone: reminders must stop.
    MISSED_REPAIR = "MissedRepair"
    # We never heard of it, and Meld says the customer must act (an adopted account, a lost COMPLETED).
    UNKNOWN_CONNECTION = "UnknownConnection"


def find_drift(ours: Connection | None, status: str | None, reason: str | None) -> DriftKind | None:
    """The kind of difference between ``ours`` and Meld's (``status``, ``reason``); None when none that matters."""
    action = classify(status, reason)
    if ours is None:
        return DriftKind.UNKNOWN_CONNECTION if action in NEEDS_ATTENTION else None
    if (ours.status, ours.status_reason) == (status, reason) or ours.superseded_by is not None:
        return None
    if action in NEEDS_ATTENTION and ours.episode_id is None:
        return DriftKind.MISSED_BREAK
    if action in ENDS_EPISODE and (ours.episode_id is not None or ours.repair_pending):
        return DriftKind.MISSED_REPAIR
    return None
