"""Failed repairs (completions that leave the connection broken) and replacement, as pure state transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connection_repair.domain.bus_events import ConnectionAttentionEnded, ConnectionReplaced
from connection_repair.domain.connection import Connection, ConnectionChange
from connection_repair.domain.status_policy import Action
from connection_repair.domain.transitions import apply_change, mark_replaced
from connection_repair.ingestion.webhook import EventType, MeldWebhook, connection_change

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def broken(**fields: object) -> Connection:
    values: dict[str, object] = {
        "connection_id": "conn-1",
        "external_customer_id": "cust-1",
        "status": "RECONNECT_REQUIRED",
        "status_reason": "LOGIN_REQUIRED",
        "action": Action.REPAIR,
        "episode_id": "episode-0",
        "episode_action": Action.REPAIR,
        "attention_since": T0,
        "last_event_at": T0,
        "last_event_id": "evt-0",
        "version": 3,
    }
    return Connection.model_validate(values | fields)


def attempted(connection: Connection, minutes: int) -> Connection:
    """What the Repair API records when it hands out a repair token."""
    return connection.model_copy(
        update={
            "repair_attempts": connection.repair_attempts + 1,
            "last_repair_at": at(minutes),
            "repair_pending": True,
            "version": connection.version + 1,
        }
    )


def completed(current: Connection, minutes: int, *, limit: int = 3) -> Connection:
    change = ConnectionChange(connection_id=current.connection_id, completed=True)
    return apply_change(
        current,
        change,
        event_id=f"evt-c{minutes}",
        event_time=at(minutes),
        new_episode_id=f"ep-{minutes}",
        max_failed_repairs=limit,
    ).connection


def status(current: Connection | None, minutes: int, new_status: str, reason: str | None = None, **fields: object):
    change = ConnectionChange(connection_id="conn-1", status=new_status, status_reason=reason, **fields)
    return apply_change(current, change, event_id=f"evt-s{minutes}", event_time=at(minutes), new_episode_id="ep-new")


def test_a_completed_webhook_is_read_as_a_completion():
    webhook = MeldWebhook.model_validate(
        {
            "eventId": "e",
            "eventType": EventType.COMPLETED,
            "timestamp": "2026-11-25T10:00:00Z",
            "payload": {"connectionId": "conn-1"},
        }
    )
    change = connection_change(webhook)
    assert change is not None
    assert change.completed


def still_broken(current: Connection, minutes: int, *, limit: int = 3) -> Connection:
    """Meld's status change after a repair the provider failed: the same status, with the reason why."""
    change = ConnectionChange(connection_id="conn-1", status="RECONNECT_REQUIRED", status_reason="PROVIDER_ERROR")
    return apply_change(
        current,
        change,
        event_id=f"evt-s{minutes}",
        event_time=at(minutes),
        new_episode_id=f"ep-{minutes}",
        max_failed_repairs=limit,
    ).connection


def failed_round(current: Connection, minutes: int, *, limit: int = 3) -> Connection:
    """A repair attempt at ``minutes``, completed 3 minutes later, and Meld saying it is still broken."""
    return still_broken(completed(attempted(current, minutes), minutes + 3, limit=limit), minutes + 4, limit=limit)


def test_completion_then_a_status_that_still_needs_repair_counts_one_failure():
    # Given a repair token was issued at minute 5, when the customer completes at minute 10
    waiting = completed(attempted(broken(), 5), 10)
    # Then the verdict waits for the status Meld sends with it
    assert (waiting.failed_repairs, waiting.repair_pending, waiting.completed_at) == (0, True, at(10))
    assert (waiting.last_event_at, waiting.last_event_id) == (T0, "evt-0")

    # When that status says it is still broken: one failure, the attempt judged, the customer still asked to repair
    after = still_broken(waiting, 11)
    assert (after.failed_repairs, after.repair_pending, after.completed_at) == (1, False, None)
    assert after.action == Action.REPAIR
    assert after.episode_id == "episode-0"


def test_a_status_stamped_before_the_completion_is_the_verdict_too():
    # Meld stamps the two "in tandem", in either order: the status a moment before the completion, delivered after it
    waiting = completed(attempted(broken(), 5), 10)
    assert still_broken(waiting, 9).failed_repairs == 1


def test_the_status_first_then_the_completion_counts_one_failure():
    # The status change after the attempt arrives first: the completion finds the verdict already known
    broken_again = still_broken(attempted(broken(), 5), 10)
    assert (broken_again.failed_repairs, broken_again.repair_pending) == (0, True)
    after = completed(broken_again, 9)
    assert (after.failed_repairs, after.repair_pending) == (1, False)


def test_a_completion_and_an_active_status_in_either_order_is_a_repair_not_a_failure():
    for first_completed in (True, False):
        current = attempted(broken(), 5)
        if first_completed:
            current = status(completed(current, 11), 10, "ACTIVE").connection
        else:
            current = completed(status(current, 10, "ACTIVE").connection, 11)
        assert (current.status, current.failed_repairs, current.repair_pending, current.completed_at) == (
            "ACTIVE",
            0,
            False,
            None,
        )
        assert current.episode_id is None


def test_a_status_before_any_completion_is_no_verdict():
    # The customer has the token but has not finished the widget: a reason change is not a failed repair
    current = still_broken(attempted(broken(), 5), 8)
    assert (current.failed_repairs, current.repair_pending) == (0, True)


def test_one_attempt_is_judged_once_even_if_meld_sends_two_completions():
    once = failed_round(broken(), 5)
    twice = completed(once, 11)
    assert twice.failed_repairs == 1


def test_a_completion_without_a_recorded_attempt_is_not_a_failed_repair():
    assert still_broken(completed(broken(), 10), 11).failed_repairs == 0


def test_a_completion_older_than_the_attempt_is_not_its_verdict():
    # The token was issued at minute 10; a completion stamped minute 8 belongs to an earlier session.
    current = completed(attempted(broken(), 10), 8)
    assert (current.completed_at, still_broken(current, 12).failed_repairs) == (None, 0)


def test_after_the_limit_the_action_is_start_new_connection_and_the_episode_ends_as_repair_failed():
    current = broken()
    for round_ in range(2):
        current = failed_round(current, 10 * round_ + 5)
    assert (current.failed_repairs, current.action) == (2, Action.REPAIR)

    waiting = completed(attempted(current, 25), 28)
    change = ConnectionChange(connection_id="conn-1", status="RECONNECT_REQUIRED", status_reason="PROVIDER_ERROR")
    transition = apply_change(
        waiting, change, event_id="evt-s29", event_time=at(29), new_episode_id="x", max_failed_repairs=3
    )

    assert transition.connection.failed_repairs == 3
    assert transition.connection.action == Action.START_NEW_CONNECTION
    assert transition.connection.episode_id is None
    [event] = transition.downstream
    assert isinstance(event, ConnectionAttentionEnded)
    assert (event.resolution, event.episode_id, event.action) == ("REPAIR_FAILED", "episode-0", "START_NEW_CONNECTION")


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_the_limit_is_configurable(limit: int):
    current = broken()
    for round_ in range(limit):
        assert current.action == Action.REPAIR
        current = failed_round(current, 10 * round_ + 5, limit=limit)
    assert current.action == Action.START_NEW_CONNECTION


def test_a_new_attempt_drops_the_previous_completions_wait_for_a_verdict():
    # A completion awaiting its verdict, then the customer asks for a new token before any status arrived
    waiting = completed(attempted(broken(), 5), 10)
    assert waiting.completed_at is not None
    from connection_repair.repair.service import RepairService  # noqa: F401 - the Repair API records attempts

    renewed = attempted(waiting, 12).model_copy(update={"completed_at": None})
    # A status now (before the new token's completion) is no verdict on the new attempt
    assert still_broken(renewed, 13).failed_repairs == 0


def test_a_later_status_change_that_still_needs_repair_keeps_start_new_connection_and_opens_no_episode():
    given_up = broken(failed_repairs=3, action=Action.START_NEW_CONNECTION, episode_id=None, attention_since=None)
    transition = status(given_up, 30, "RECONNECT_REQUIRED", "TOKEN_EXPIRED")
    assert transition.connection.action == Action.START_NEW_CONNECTION
    assert transition.connection.episode_id is None
    assert transition.downstream == []


def test_working_again_forgives_failed_repairs():
    given_up = broken(failed_repairs=3, action=Action.START_NEW_CONNECTION, episode_id=None, attention_since=None)
    active = status(given_up, 30, "ACTIVE").connection
    assert (active.failed_repairs, active.repair_pending, active.action) == (0, False, Action.NONE)
    again = status(active, 40, "RECONNECT_REQUIRED", "LOGIN_REQUIRED").connection
    assert again.action == Action.REPAIR


def test_a_successful_repair_clears_the_pending_attempt():
    repaired = status(attempted(broken(), 5), 10, "ACTIVE").connection
    assert (repaired.failed_repairs, repaired.repair_pending, repaired.repair_attempts) == (0, False, 0)


# --- Replacement ------------------------------------------------------------------------------------------------


def new_connection(**fields: object) -> Connection:
    values: dict[str, object] = {
        "connection_id": "conn-new",
        "external_customer_id": "cust-1",
        "status": "IN_PROGRESS",
        "action": Action.NONE,
        "replaces_connection_id": "conn-1",
        "version": 1,
    }
    return Connection.model_validate(values | fields)


def test_the_replacement_completing_announces_that_it_replaced_the_old_one_once():
    # The completion alone says nothing about the status (it may be Meld's duplicate): no announcement yet
    completion = ConnectionChange(connection_id="conn-new", completed=True)
    waiting = apply_change(new_connection(), completion, event_id="e1", event_time=at(5), new_episode_id="x")
    assert waiting.downstream == []
    assert waiting.connection.replaces_connection_id == "conn-1"

    # The status change to ACTIVE sent with it completes the replacement
    transition = apply_change(
        waiting.connection,
        ConnectionChange(connection_id="conn-new", status="ACTIVE"),
        event_id="e2",
        event_time=at(4),
        new_episode_id="y",
    )
    assert transition.connection.status == "ACTIVE"
    assert transition.connection.replaces_connection_id is None
    [event] = transition.downstream
    assert isinstance(event, ConnectionReplaced)
    assert (event.connection_id, event.replaced_connection_id, event.external_customer_id, event.event_id) == (
        "conn-new",
        "conn-1",
        "cust-1",
        "e2",  # the Meld event that completed it
    )
    assert event.detail_type == "Connection Replaced"

    again = apply_change(
        transition.connection,
        ConnectionChange(connection_id="conn-new", status="ACTIVE"),
        event_id="e3",
        event_time=at(6),
        new_episode_id="z",
    )
    assert again.downstream == []


def test_a_replacement_completed_as_meld_s_duplicate_is_never_announced_as_working_whatever_arrives_first():
    for completion_first in (True, False):
        completion = ConnectionChange(connection_id="conn-new", completed=True)
        duplicate = ConnectionChange(
            connection_id="conn-new", status="PARTIALLY_ACTIVE", status_reason="INACTIVE_DUPLICATE"
        )
        changes = [(completion, at(6)), (duplicate, at(5))]
        current, announced = new_connection(), []
        for change, moment in changes if completion_first else reversed(changes):
            step = apply_change(current, change, event_id=f"e{moment}", event_time=moment, new_episode_id="x")
            current, announced = step.connection, announced + step.downstream
        [event] = [event for event in announced if isinstance(event, ConnectionReplaced)]
        assert event.inactive_duplicate
        assert (current.status, current.replaces_connection_id) == ("PARTIALLY_ACTIVE", None)


@pytest.mark.parametrize(
    ("status", "reason", "completes"),
    [
        ("ACTIVE", None, True),
        ("PARTIALLY_ACTIVE", "PARTIAL_AGGREGATION_SUCCESS", True),
        ("PARTIALLY_ACTIVE", "NEW_ACCOUNTS_AVAILABLE", False),
        ("RECONNECT_REQUIRED", "LOGIN_REQUIRED", False),
    ],
)
def test_a_replacement_completes_only_when_it_works_as_one(status: str, reason: str | None, completes: bool):
    change = ConnectionChange(connection_id="conn-new", status=status, status_reason=reason)
    transition = apply_change(new_connection(), change, event_id="e1", event_time=at(5), new_episode_id="x")
    replaced = [event for event in transition.downstream if isinstance(event, ConnectionReplaced)]
    assert [event.inactive_duplicate for event in replaced] == ([False] if completes else [])
    assert transition.connection.replaces_connection_id == (None if completes else "conn-1")


def test_meld_s_inactive_duplicate_is_announced_as_one_for_the_replacer_to_follow():
    # The same bank linked again: Meld keeps another connection active; the replacer finds out which
    change = ConnectionChange(connection_id="conn-new", status="PARTIALLY_ACTIVE", status_reason="INACTIVE_DUPLICATE")
    transition = apply_change(new_connection(), change, event_id="e1", event_time=at(5), new_episode_id="x")
    [event] = transition.downstream
    assert isinstance(event, ConnectionReplaced)
    assert (event.connection_id, event.replaced_connection_id, event.inactive_duplicate) == ("conn-new", "conn-1", True)
    assert transition.connection.replaces_connection_id is None
    again = apply_change(transition.connection, change, event_id="e2", event_time=at(6), new_episode_id="y")
    assert again.downstream == []


def test_a_replacement_that_never_completes_announces_nothing():
    expired = apply_change(
        new_connection(),
        ConnectionChange(connection_id="conn-new", status="EXPIRED"),
        event_id="e1",
        event_time=at(5),
        new_episode_id="x",
    )
    assert expired.downstream == []
    assert expired.connection.replaces_connection_id == "conn-1"


def test_superseding_ends_the_open_episode_and_asks_nothing_more():
    transition = mark_replaced(broken(), replacement_id="conn-new", at=at(50), event_id="evt-completed")
    retired = transition.connection
    assert (retired.superseded_by, retired.action, retired.episode_id, retired.version) == (
        "conn-new",
        Action.NONE,
        None,
        4,
    )
    [event] = transition.downstream
    assert isinstance(event, ConnectionAttentionEnded)
    assert (event.resolution, event.episode_id) == ("SUPERSEDED", "episode-0")


def test_superseding_leaves_exactly_the_retired_state_and_announces_the_episode_as_it_was():
    pending = attempted(broken(institution_id="inst-1", institution_name="Chase"), 40).model_copy(
        update={"repair_attempts": 2}
    )
    transition = mark_replaced(pending, replacement_id="conn-new", at=at(50), event_id="evt-completed")
    assert transition.connection == pending.model_copy(
        update={
            "superseded_by": "conn-new",
            "action": Action.NONE,
            "repair_pending": False,
            "episode_id": None,
            "episode_action": None,
            "attention_since": None,
            "repair_attempts": 0,
            "version": pending.version + 1,
        }
    )
    assert transition.downstream == [
        ConnectionAttentionEnded(
            connection_id="conn-1",
            external_customer_id="cust-1",
            institution_id="inst-1",
            institution_name="Chase",
            status="RECONNECT_REQUIRED",
            status_reason="LOGIN_REQUIRED",
            action=Action.NONE,
            episode_id="episode-0",
            event_time=at(50),
            event_id="evt-completed",  # the replacement's completion, which caused this end
            resolution="SUPERSEDED",
            attention_since=T0,
        )
    ]


def test_superseding_a_healthy_connection_announces_nothing():
    healthy = broken(status="ACTIVE", status_reason=None, action=Action.NONE, episode_id=None, episode_action=None)
    transition = mark_replaced(
        healthy.model_copy(update={"attention_since": None}), replacement_id="conn-new", at=at(50), event_id=None
    )
    assert transition.downstream == []
    assert (transition.connection.superseded_by, transition.connection.version) == ("conn-new", 4)


def test_superseding_twice_changes_nothing():
    once = mark_replaced(broken(), replacement_id="conn-new", at=at(50), event_id="evt-completed").connection
    twice = mark_replaced(once, replacement_id="conn-new", at=at(51), event_id="evt-completed")
    assert twice.connection == once
    assert twice.downstream == []


def test_a_superseded_connection_stays_quiet_when_meld_reports_it_broken_or_deleted():
    retired = mark_replaced(broken(), replacement_id="conn-new", at=at(50), event_id="evt-completed").connection
    for minutes, new_status in ((60, "RECONNECT_REQUIRED"), (70, "DELETED")):
        transition = status(retired, minutes, new_status)
        assert transition.connection.action == Action.NONE
        assert transition.connection.episode_id is None
        assert transition.downstream == []
        retired = transition.connection


def test_a_completion_stamped_at_the_instant_of_the_attempt_is_not_its_verdict():
    # The token is handed out at minute 10; a completion stamped that very instant cannot be the customer's use of it.
    same_instant = completed(attempted(broken(), 10), 10)
    assert (same_instant.completed_at, same_instant.repair_pending) == (None, True)
    a_moment_later = completed(attempted(broken(), 10), 11)
    assert (a_moment_later.completed_at, a_moment_later.repair_pending) == (at(11), True)


def test_a_waiting_status_between_the_completion_and_its_verdict_keeps_the_completion():
    # Completed at 13 (the verdict is the next status); the bank down at 14 (no verdict); still broken at 15
    awaiting = completed(attempted(broken(), 10), 13)
    assert (awaiting.repair_pending, awaiting.completed_at) == (True, at(13))
    waiting = status(awaiting, 14, "DEGRADED", "INSTITUTION_CURRENTLY_UNAVAILABLE").connection
    assert (waiting.repair_pending, waiting.completed_at, waiting.failed_repairs) == (True, at(13), 0)
    assert still_broken(waiting, 15).failed_repairs == 1


def test_a_status_stamped_at_the_moment_of_the_attempt_is_not_its_verdict():
    # The status Meld sent at the very moment the repair token was handed out is the one the repair answers
    awaiting = completed(attempted(broken(last_event_at=at(10)), 10), 13)
    assert (awaiting.failed_repairs, awaiting.completed_at) == (0, at(13))


def test_a_completion_makes_a_connection_still_in_progress_active():
    in_progress = Connection(connection_id="conn-1", external_customer_id="cust-1", status="IN_PROGRESS", version=1)
    assert (completed(in_progress, 5).status, completed(in_progress, 5).action) == ("ACTIVE", Action.NONE)
    # Whatever status it already has stays
    assert completed(broken(), 5).status == "RECONNECT_REQUIRED"


def test_a_replaced_connection_forgets_the_completion_it_was_waiting_on():
    awaiting = completed(attempted(broken(), 10), 13)
    replaced = mark_replaced(awaiting, replacement_id="conn-new", at=at(20), event_id="evt-completed").connection
    assert (replaced.repair_pending, replaced.completed_at, replaced.action) == (False, None, Action.NONE)
