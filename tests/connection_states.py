"""Hypothesis strategies for connection states and the changes webhooks bring, shared by the silent-update tests.

``states_and_changes`` draws three quarters of its pairs fitted to the change's silent expectation (so the assertions
about the one-write path are reached often) and the rest anywhere in the reachable state space (so its refusals are
tested too).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from connection_repair.domain.connection import Connection, ConnectionChange
from connection_repair.domain.status_policy import ENDS_EPISODE, NEEDS_ATTENTION, Action, classify
from connection_repair.domain.transitions import silent_update

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
STATUSES = [
    None,
    "ACTIVE",
    "IN_PROGRESS",
    "RECONNECT_REQUIRED",
    "DEGRADED",
    "PARTIALLY_ACTIVE",
    "UNRECOVERABLE",
    "DELETED",
    "EXPIRED",
    "UNDETERMINED",
    "SOMETHING_NEW",
]
REASONS = [
    None,
    "LOGIN_REQUIRED",
    "ACCESS_EXPIRING_SOON",
    "NEW_ACCOUNTS_AVAILABLE",
    "INSTITUTION_CURRENTLY_UNAVAILABLE",
    "INSTITUTION_ACTION_REQUIRED",
    "SOMETHING_NEW",
]
# Every (status, reason) a connection can hold, with the action it classifies as.
COMBINATIONS = [(status, reason if status else None) for status in STATUSES for reason in REASONS]
moments = st.integers(min_value=0, max_value=120).map(lambda minutes: T0 + timedelta(minutes=minutes))
names = st.sampled_from(["a", "b", "c"])
optional_text = st.none() | st.sampled_from(["x", "y"])


@st.composite
def connections(draw: st.DrawFn, combinations: list[tuple[str | None, str | None]] = COMBINATIONS) -> Connection:
    """Reachable states: an attention action has its episode open; NONE / START_NEW_CONNECTION have none; a
    WAIT (transient) may be inside an open episode or not."""
    status, reason = draw(st.sampled_from(combinations))
    action = classify(status, reason)
    episode = action in NEEDS_ATTENTION or (action == Action.WAIT and draw(st.booleans()))
    episode_action = action if action in NEEDS_ATTENTION else draw(st.sampled_from(sorted(NEEDS_ATTENTION)))
    last_event_at = draw(st.none() | moments)
    return Connection(
        connection_id="conn-1",
        external_customer_id=draw(optional_text),
        institution_name=draw(optional_text),
        status=status,
        status_reason=reason,
        action=action,
        last_event_at=last_event_at,
        last_event_id=draw(names) if last_event_at else None,
        episode_id="episode-old" if episode else None,
        episode_action=episode_action if episode else None,
        attention_since=T0 if episode else None,
        repair_attempts=draw(st.integers(0, 3)),
        last_repair_at=draw(st.none() | moments),
        repair_pending=draw(st.booleans()),
        failed_repairs=draw(st.integers(0, 4)),
        replaces_connection_id=draw(st.none() | st.just("conn-0")),
        superseded_by=draw(st.none() | st.just("conn-2")),
        version=draw(st.integers(0, 50)),
    )


@st.composite
def changes(draw: st.DrawFn) -> ConnectionChange:
    status = draw(st.sampled_from(STATUSES))
    return ConnectionChange(
        connection_id="conn-1",
        status=status,
        status_reason=draw(st.sampled_from(REASONS)) if status else None,
        external_customer_id=draw(optional_text),
        institution_name=draw(optional_text),
        completed=draw(st.booleans()) if status is None else False,
    )


def _fitting(change: ConnectionChange) -> list[tuple[str | None, str | None]]:
    """The (status, reason) pairs a connection may hold for ``change``'s silent expectation to be satisfiable."""
    silent = silent_update(change, event_id="a", event_time=T0)
    if silent.settled_status:
        return [(status, reason) for status, reason in COMBINATIONS if status not in (None, "IN_PROGRESS")]
    if silent.episode_action is not None:
        wanted = {silent.episode_action, Action.WAIT}
        return [pair for pair in COMBINATIONS if classify(*pair) in wanted]
    if silent.no_episode:
        return [pair for pair in COMBINATIONS if classify(*pair) in ENDS_EPISODE]
    return COMBINATIONS


@st.composite
def fitted_connection(draw: st.DrawFn, change: ConnectionChange, event_time: datetime, event_id: str) -> Connection:
    """A reachable state with no repair or replacement under way, older than the change, in a fitting status."""
    silent = silent_update(change, event_id="a", event_time=T0)
    connection = draw(connections(_fitting(change)))
    if silent.episode_action is not None and connection.episode_id is not None:
        # An open episode for the same action (a WAIT inside it keeps the episode's action).
        connection = connection.model_copy(update={"episode_action": silent.episode_action})
    elif silent.episode_action is not None:
        connection = connection.model_copy(
            update={"episode_id": "episode-old", "episode_action": silent.episode_action, "attention_since": T0}
        )
    older = draw(st.none() | st.integers(1, 60).map(lambda minutes: event_time - timedelta(minutes=minutes)))
    fitted = connection.model_copy(
        update={
            "last_event_at": older,
            "last_event_id": draw(names) if older else None,
            "repair_pending": False,
            "failed_repairs": 0,
            "replaces_connection_id": None,
            "superseded_by": None,
        }
    )
    # One in three is spoiled in exactly one respect, so that each part of the expectation is tested alone.
    spoils = ["superseded", "replaces", "pending", "failed", "newer", "same"]
    if silent.episode_action is not None or silent.no_episode:
        spoils.append("episode")
    if silent.settled_status:
        spoils.append("unsettled")
    spoiled_by = draw(st.sampled_from(spoils))
    spoil = spoiled_by if draw(st.integers(0, 2)) == 0 else ""
    spoiled: dict[str, dict[str, object]] = {
        "": {},
        "superseded": {"superseded_by": "conn-2"},
        "replaces": {"replaces_connection_id": "conn-0"},
        "pending": {"repair_pending": True},
        "failed": {"failed_repairs": draw(st.integers(1, 4))},
        "newer": {"last_event_at": event_time + timedelta(minutes=draw(st.integers(0, 5))), "last_event_id": "c"},
        "same": {"last_event_at": event_time, "last_event_id": event_id},
        # A new connection, not yet settled by its completion
        "unsettled": {"status": "IN_PROGRESS", "status_reason": None, "action": Action.NONE, **NO_EPISODE},
    }
    if spoil == "episode":
        spoiled["episode"] = draw(other_episode(silent.episode_action))
    return fitted.model_copy(update=spoiled[spoil])


NO_EPISODE: dict[str, object] = {"episode_id": None, "episode_action": None, "attention_since": None}


@st.composite
def other_episode(draw: st.DrawFn, expected: Action | None) -> dict[str, object]:
    """A reachable state whose episode is not the one expected: another action's, a transient outage inside another
    action's episode or outside any, or (where none may be open) one open."""
    pairs = [pair for pair in COMBINATIONS if classify(*pair) == Action.WAIT or classify(*pair) in NEEDS_ATTENTION]
    status, reason = draw(st.sampled_from([pair for pair in pairs if classify(*pair) != expected]))
    action = classify(status, reason)
    others = sorted(NEEDS_ATTENTION - {expected} if expected else NEEDS_ATTENTION)
    episode_action = draw(st.none() | st.sampled_from(others)) if action == Action.WAIT else action
    episode = (
        {"episode_id": "episode-old", "episode_action": episode_action, "attention_since": T0}
        if episode_action is not None
        else NO_EPISODE
    )
    return {"status": status, "status_reason": reason, "action": action, **episode}


@st.composite
def states_and_changes(draw: st.DrawFn) -> tuple[Connection | None, ConnectionChange, datetime, str]:
    """(stored connection or None, change, event time, event id): mostly fitted to the silent path."""
    change, event_time, event_id = draw(changes()), draw(moments), draw(names)
    if draw(st.integers(0, 3)) > 0:
        current: Connection | None = draw(fitted_connection(change, event_time, event_id))
    else:
        current = draw(st.none() | connections())
    return current, change, event_time, event_id
