from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connection_repair.domain.bus_events import ConnectionAttentionEnded, ConnectionNeedsAttention
from connection_repair.domain.connection import Connection, ConnectionChange
from connection_repair.domain.status_policy import Action
from connection_repair.domain.transitions import apply_change, is_stale, silent_update
from connection_repair.ingestion.webhook import EventType, MeldWebhook, connection_change

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def change(status: str | None, reason: str | None = None, **fields) -> ConnectionChange:
    return ConnectionChange(connection_id="conn-1", status=status, status_reason=reason, **fields)


def step(current: Connection | None, status, reason=None, *, minutes: int, event_id: str | None = None, **fields):
    return apply_change(
        current,
        change(status, reason, **fields),
        event_id=event_id or f"evt-{minutes}",
        event_time=T0 + timedelta(minutes=minutes),
        new_episode_id=f"episode-{minutes}",
    )


def test_entering_reconnect_required_opens_an_episode_and_announces_it():
    active = step(None, "ACTIVE", minutes=0, external_customer_id="cust-1").connection
    broken = step(active, "RECONNECT_REQUIRED", "LOGIN_REQUIRED", minutes=5)

    assert broken.connection.action == Action.REPAIR
    assert broken.connection.episode_id == "episode-5"
    assert broken.connection.attention_since == T0 + timedelta(minutes=5)
    [event] = broken.downstream
    assert isinstance(event, ConnectionNeedsAttention)
    assert (event.episode_id, event.status, event.status_reason) == (
        "episode-5",
        "RECONNECT_REQUIRED",
        "LOGIN_REQUIRED",
    )
    assert event.external_customer_id == "cust-1"


def test_every_announcement_names_the_event_that_caused_it():
    broken = step(None, "RECONNECT_REQUIRED", "LOGIN_REQUIRED", minutes=0, external_customer_id="cust-1")
    healed = step(broken.connection, "ACTIVE", minutes=30, event_id="evt-meld-healed")
    # The customer becomes known only later: the episode is announced then, by the event that named them
    unknown = step(None, "RECONNECT_REQUIRED", "LOGIN_REQUIRED", minutes=0)
    named = step(unknown.connection, "RECONNECT_REQUIRED", "LOGIN_REQUIRED", minutes=1, external_customer_id="cust-1")

    assert [event.event_id for event in broken.downstream] == ["evt-0"]
    assert [event.event_id for event in healed.downstream] == ["evt-meld-healed"]
    assert [event.event_id for event in named.downstream] == ["evt-1"]


def test_staying_broken_does_not_announce_again():
    broken = step(None, "RECONNECT_REQUIRED", "LOGIN_REQUIRED", minutes=0).connection
    again = step(broken, "RECONNECT_REQUIRED", "TOKEN_EXPIRED", minutes=5)
    assert again.downstream == []
    assert again.connection.episode_id == broken.episode_id
    assert again.connection.status_reason == "TOKEN_EXPIRED"


def test_any_move_to_active_ends_the_episode():
    broken = step(None, "RECONNECT_REQUIRED", "LOGIN_REQUIRED", minutes=0).connection
    repaired = step(broken, "ACTIVE", minutes=30)

    assert repaired.connection.episode_id is None
    assert repaired.connection.action == Action.NONE
    [event] = repaired.downstream
    assert isinstance(event, ConnectionAttentionEnded)
    assert (event.episode_id, event.resolution, event.attention_since) == ("episode-0", "REPAIRED", T0)


def test_transient_outage_keeps_an_open_episode_open_without_announcing():
    broken = step(None, "RECONNECT_REQUIRED", "LOGIN_REQUIRED", minutes=0).connection
    outage = step(broken, "DEGRADED", "INSTITUTION_CURRENTLY_UNAVAILABLE", minutes=5)
    back = step(outage.connection, "RECONNECT_REQUIRED", "LOGIN_REQUIRED", minutes=10)

    assert outage.downstream == []
    assert outage.connection.episode_id == "episode-0"
    assert back.downstream == []
    assert back.connection.episode_id == "episode-0"


def test_transient_outage_alone_opens_no_episode():
    result = step(None, "DEGRADED", "SERVICE_PROVIDER_CURRENTLY_UNAVAILABLE", minutes=0)
    assert result.downstream == []
    assert result.connection.episode_id is None


def test_deletion_ends_the_episode_with_its_own_resolution():
    broken = step(None, "RECONNECT_REQUIRED", minutes=0).connection
    deleted = step(broken, "DELETED", minutes=5)
    [event] = deleted.downstream
    assert isinstance(event, ConnectionAttentionEnded)
    assert event.resolution == "DELETED"
    assert deleted.connection.action == Action.START_NEW_CONNECTION


import pytest  # noqa: E402


@pytest.mark.parametrize(
    ("status", "reason", "resolution"),
    [
        ("ACTIVE", None, "REPAIRED"),
        ("PARTIALLY_ACTIVE", None, "REPAIRED"),  # works again, if not for every account
        ("EXPIRED", None, "EXPIRED"),
        ("DELETED", None, "DELETED"),
        ("ACTIVE", "ACCESS_EXPIRING_SOON", "REPAIRED"),  # repaired; renewing access is a new episode
        ("ACTIVE", "NEW_ACCOUNTS_AVAILABLE", "REPAIRED"),
    ],
)
def test_how_a_repair_episode_ends_is_named_by_what_ended_it(status: str, reason: str | None, resolution: str):
    broken = step(None, "RECONNECT_REQUIRED", minutes=0).connection
    ended = step(broken, status, reason, minutes=5).downstream[0]
    assert isinstance(ended, ConnectionAttentionEnded)
    assert ended.resolution == resolution


def test_a_different_thing_to_do_replaces_the_episode():
    expiring = step(None, "ACTIVE", "ACCESS_EXPIRING_SOON", minutes=0).connection
    broken = step(expiring, "RECONNECT_REQUIRED", "TOKEN_EXPIRED", minutes=5)
    ended, started = broken.downstream
    assert isinstance(ended, ConnectionAttentionEnded)
    assert ended.resolution == "SUPERSEDED"
    assert isinstance(started, ConnectionNeedsAttention)
    assert started.action == Action.REPAIR
    assert broken.connection.episode_id == "episode-5"


def test_completed_without_status_makes_a_new_connection_active_and_keeps_identity():
    completed = step(
        None, None, minutes=0, external_customer_id="cust-1", institution_name="Chase", customer_id="meld-c"
    )
    assert completed.connection.status == "ACTIVE"
    assert completed.connection.external_customer_id == "cust-1"
    # A later status change without identity fields keeps what was learned.
    broken = step(completed.connection, "RECONNECT_REQUIRED", minutes=5)
    assert (broken.connection.external_customer_id, broken.connection.institution_name) == ("cust-1", "Chase")


def test_completed_does_not_overwrite_a_known_status():
    broken = step(None, "RECONNECT_REQUIRED", minutes=0).connection
    completed = step(broken, None, minutes=5)
    assert completed.connection.status == "RECONNECT_REQUIRED"
    assert completed.downstream == []


def test_older_event_is_stale_and_changes_nothing():
    repaired = step(step(None, "RECONNECT_REQUIRED", minutes=0).connection, "ACTIVE", minutes=10).connection
    late = step(repaired, "RECONNECT_REQUIRED", minutes=5)
    assert late.stale
    assert late.connection == repaired
    assert late.downstream == []


def test_equal_timestamps_are_ordered_by_event_id_so_every_order_agrees():
    first = step(None, "ACTIVE", minutes=0, event_id="b").connection
    assert is_stale(first, T0, "a")
    assert is_stale(first, T0, "b")  # the same event again
    assert not is_stale(first, T0, "c")


def test_every_write_bumps_the_version_for_optimistic_concurrency():
    first = step(None, "ACTIVE", minutes=0).connection
    second = step(first, "RECONNECT_REQUIRED", minutes=1).connection
    assert (first.version, second.version) == (1, 2)


def test_change_is_read_from_every_known_field_name():
    def webhook(event_type: str, payload) -> MeldWebhook:
        return MeldWebhook.model_validate(
            {"eventId": "e", "eventType": event_type, "timestamp": "2026-11-25T10:00:00Z", "payload": payload}
        )

    legacy = connection_change(
        webhook(
            EventType.STATUS_CHANGE,
            {"connectionId": "c", "status": "RECONNECT_REQUIRED", "reason": "OTHER", "previousStatus": "ACTIVE"},
        )
    )
    assert legacy is not None
    assert (legacy.status, legacy.status_reason, legacy.previous_status) == ("RECONNECT_REQUIRED", "OTHER", "ACTIVE")
    current = connection_change(
        webhook(EventType.STATUS_CHANGE, {"connectionId": "c", "newStatus": "DEGRADED", "newStatusReason": "OTHER"})
    )
    assert current is not None
    assert (current.status, current.status_reason) == ("DEGRADED", "OTHER")
    deleted = connection_change(webhook(EventType.DELETED, {"connectionId": "c"}))
    assert deleted is not None
    assert deleted.status == "DELETED"
    assert connection_change(webhook(EventType.STATUS_CHANGE, {"newStatus": "ACTIVE"})) is None
    assert connection_change(webhook(EventType.STATUS_CHANGE, ["not", "an", "object"])) is None


def test_an_episode_nobody_could_be_told_about_is_announced_once_its_customer_is_known():
    # The episode opened on an event without externalCustomerId (and Meld did not know it either)
    unattributed = Connection(
        connection_id="conn-1",
        status="RECONNECT_REQUIRED",
        status_reason="LOGIN_REQUIRED",
        action=Action.REPAIR,
        episode_id="episode-1",
        episode_action=Action.REPAIR,
        attention_since=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
        last_event_at=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
        last_event_id="evt-1",
        version=1,
    )
    change = ConnectionChange(
        connection_id="conn-1",
        external_customer_id="cust-1",
        status="RECONNECT_REQUIRED",
        status_reason="LOGIN_REQUIRED",
    )
    later = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
    transition = apply_change(unattributed, change, event_id="evt-2", event_time=later, new_episode_id="unused")
    [announced] = transition.downstream
    assert isinstance(announced, ConnectionNeedsAttention)
    assert (announced.episode_id, announced.external_customer_id, announced.attention_since) == (
        "episode-1",
        "cust-1",
        unattributed.attention_since,
    )
    assert transition.connection.episode_id == "episode-1"
    # ... and the silent path does not swallow it
    assert not silent_update(change, event_id="evt-2", event_time=later).holds(unattributed)
    # Once known, a later event announces nothing more
    again = apply_change(transition.connection, change, event_id="evt-3", event_time=later, new_episode_id="unused")
    assert again.downstream == []


def test_an_ended_episode_leaves_nothing_of_itself_on_the_connection():
    opened = step(None, "RECONNECT_REQUIRED", "LOGIN_REQUIRED", minutes=0, external_customer_id="cust-1").connection
    attempted = opened.model_copy(update={"repair_attempts": 2})
    ended = step(attempted, "ACTIVE", minutes=5).connection
    assert (ended.episode_id, ended.episode_action, ended.attention_since, ended.repair_attempts) == (
        None,
        None,
        None,
        0,
    )


def test_what_meld_says_of_the_connection_is_kept_and_what_it_leaves_out_is_not_erased():
    first = step(None, "ACTIVE", minutes=0, customer_id="meld-cust-1", institution_id="inst-1").connection
    assert (first.customer_id, first.institution_id) == ("meld-cust-1", "inst-1")
    quiet = step(first, "ACTIVE", minutes=1).connection  # an event without them keeps them
    assert (quiet.customer_id, quiet.institution_id) == ("meld-cust-1", "inst-1")
    moved = step(quiet, "ACTIVE", minutes=2, customer_id="meld-cust-2", institution_id="inst-2").connection
    assert (moved.customer_id, moved.institution_id) == ("meld-cust-2", "inst-2")
    # The silent path sets the same fields
    silent = silent_update(
        change("ACTIVE", customer_id="meld-cust-2", institution_id="inst-2"), event_id="evt-2", event_time=T0
    )
    assert (silent.fields["customer_id"], silent.fields["institution_id"]) == ("meld-cust-2", "inst-2")


def test_a_customer_learned_as_the_episode_ends_is_on_the_end_of_the_episode():
    unattributed = step(None, "RECONNECT_REQUIRED", "LOGIN_REQUIRED", minutes=0).connection
    transition = step(unattributed, "ACTIVE", minutes=5, external_customer_id="cust-1")
    [ended] = transition.downstream
    assert isinstance(ended, ConnectionAttentionEnded)
    assert (ended.external_customer_id, ended.episode_id) == ("cust-1", "episode-0")
