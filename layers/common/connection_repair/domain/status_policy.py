"""What a customer should do about a connection, given Meld's (status, statusReason).

The table is Meld's "connection errors and reasons" page (docs.meld.io, Bank Linking). Meld adds values over time, so
an unknown status or reason is never an error: it is classified conservatively (WAIT: no message, no change to an
open episode).
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What the reconnect prompt should ask of the customer."""

    REPAIR = "REPAIR"
    RENEW_ACCESS = "RENEW_ACCESS"
    ADD_ACCOUNTS = "ADD_ACCOUNTS"
    WAIT = "WAIT"
    START_NEW_CONNECTION = "START_NEW_CONNECTION"
    NONE = "NONE"


# Actions that open an episode: the customer can and should do something in the app.
NEEDS_ATTENTION: frozenset[Action] = frozenset({Action.REPAIR, Action.RENEW_ACCESS, Action.ADD_ACCOUNTS})
# Actions that close an open episode: nothing is left for the customer to repair.
ENDS_EPISODE: frozenset[Action] = frozenset({Action.NONE, Action.START_NEW_CONNECTION})

# Statuses in which the connection works: failed repairs are forgiven, a replacement is complete, nothing to repair.
USABLE_STATUSES: frozenset[str] = frozenset({"ACTIVE", "PARTIALLY_ACTIVE"})
# Meld refuses to repair these (409); the way out is a new connection.
NOT_REPAIRABLE_STATUSES: frozenset[str] = frozenset({"EXPIRED", "DELETED", "IN_PROGRESS"})

_BY_STATUS_AND_REASON: dict[tuple[str, str | None], Action] = {
    ("ACTIVE", None): Action.NONE,
    ("ACTIVE", "ACCESS_EXPIRING_SOON"): Action.RENEW_ACCESS,
    ("ACTIVE", "NEW_ACCOUNTS_AVAILABLE"): Action.ADD_ACCOUNTS,
    ("ACTIVE", "RECONNECT_AVAILABLE"): Action.ADD_ACCOUNTS,  # legacy name of NEW_ACCOUNTS_AVAILABLE
    ("DEGRADED", "INSTITUTION_CURRENTLY_UNAVAILABLE"): Action.WAIT,
    ("DEGRADED", "SERVICE_PROVIDER_CURRENTLY_UNAVAILABLE"): Action.WAIT,
    ("DEGRADED", "INSTITUTION_ACTION_REQUIRED"): Action.REPAIR,
    ("DEGRADED", "INTERACTIVE_REFRESH"): Action.REPAIR,
    ("DEGRADED", "CUSTOMER_ACTION_REQUIRED"): Action.REPAIR,  # legacy
}

# Where the reason does not matter (or is unknown), the status alone decides.
_BY_STATUS: dict[str, Action] = {
    "IN_PROGRESS": Action.NONE,
    "EXPIRED": Action.START_NEW_CONNECTION,
    "DELETED": Action.START_NEW_CONNECTION,
    "ACTIVE": Action.NONE,
    "PARTIALLY_ACTIVE": Action.NONE,
    "RECONNECT_REQUIRED": Action.REPAIR,
    "UNRECOVERABLE": Action.REPAIR,
    "CUSTOMER_ACTION_REQUIRED": Action.REPAIR,  # legacy status
    "RECONNECT_AVAILABLE": Action.ADD_ACCOUNTS,  # legacy status
    "DEGRADED": Action.WAIT,
    "UNDETERMINED": Action.WAIT,
}

KNOWN_STATUSES: frozenset[str] = frozenset(_BY_STATUS)
KNOWN_REASONS: frozenset[str] = frozenset(
    {reason for _, reason in _BY_STATUS_AND_REASON if reason is not None}
    | {
        "PARTIAL_AGGREGATION_SUCCESS",
        "INACTIVE_DUPLICATE",
        "LOGIN_REQUIRED",
        "TOKEN_EXPIRED",
        "OTHER",
        "REPAIRING_INSTITUTION",
        "CONTINUED_AGGREGATION_FAILURES",
    }
)


def classify(status: str | None, reason: str | None) -> Action:
    """Map Meld's state to the customer's action; unknown values fall back to WAIT."""
    if status is None:
        return Action.WAIT
    exact = _BY_STATUS_AND_REASON.get((status, reason))
    if exact is not None:
        return exact
    return _BY_STATUS.get(status, Action.WAIT)


def is_known(status: str | None, reason: str | None) -> bool:
    """True when both values are in Meld's documented lists (for logging what we had to guess about)."""
    return (status is None or status in KNOWN_STATUSES) and (reason is None or reason in KNOWN_REASONS)
