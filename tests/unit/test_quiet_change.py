"""The one-write path must agree with the full transition wherever its expectation holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from connection_repair.connection_state import apply_change, quiet_change
from connection_repair.models import Connection, ConnectionChange
from connection_repair.status_policy import NEEDS_ATTENTION, Action, classify

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
moments = st.integers(min_value=0, max_value=120).map(lambda minutes: T0 + timedelta(minutes=minutes))
names = st.sampled_from(["a", "b", "c"])
optional_text = st.none() | st.sampled_from(["x", "y"])


@st.composite
def connections(draw: st.DrawFn) -> Connection:
    """Reachable states: an attention action has its episode open; NONE / START_NEW_CONNECTION have none; a
    WAIT (transient) may be inside an open episode or not."""
    status, reason = draw(st.sampled_from(STATUSES)), draw(st.sampled_from(REASONS))
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


@settings(max_examples=1500, deadline=None)
@given(current=connections(), change=changes(), event_time=moments, event_id=names)
def test_where_the_quiet_expectation_holds_the_full_transition_is_exactly_the_quiet_update(
    current, change, event_time, event_id
):
    quiet = quiet_change(change, event_id=event_id, event_time=event_time)
    if not quiet.holds(current):
        return
    transition = apply_change(current, change, event_id=event_id, event_time=event_time, new_episode_id="episode-new")

    assert not transition.stale
    assert transition.downstream == []
    assert transition.connection == current.model_copy(update=quiet.fields | {"version": current.version + 1})


def test_the_quiet_path_covers_the_common_case():
    # A connection that broke earlier and breaks again for another reason: no downstream event is due.
    broken = apply_change(
        None,
        ConnectionChange(connection_id="c", status="RECONNECT_REQUIRED", status_reason="LOGIN_REQUIRED"),
        event_id="e1",
        event_time=T0,
        new_episode_id="ep",
    ).connection
    again = ConnectionChange(connection_id="c", status="RECONNECT_REQUIRED", status_reason="TOKEN_EXPIRED")
    assert quiet_change(again, event_id="e2", event_time=T0 + timedelta(minutes=1)).holds(broken)
    # ... while a repair (ending the episode) is not quiet.
    repaired = ConnectionChange(connection_id="c", status="ACTIVE")
    assert not quiet_change(repaired, event_id="e3", event_time=T0 + timedelta(minutes=2)).holds(broken)
