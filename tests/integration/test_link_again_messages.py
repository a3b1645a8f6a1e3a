"""When only a new link will help (repeated failed repairs, expired, deleted), reminders to repair stop and one
message says so: "link <bank> again", with the deep link, under the customer's opt-out, quiet hours and cap."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from connection_repair.domain.bus_events import ConnectionAttentionEnded
from connection_repair.domain.connection import Connection
from connection_repair.domain.status_policy import Action
from local.aws_resources import LocalResources
from tests.notifier_support import T0, Clock, NotifierRig, attention, build_notifier, sent_emails

ENDED_AT = T0 + timedelta(days=2)
AFTER_WINDOW = ENDED_AT + timedelta(minutes=6)


@pytest.fixture
def rig(aws: LocalResources) -> NotifierRig:
    return build_notifier(aws.table_name, Clock(ENDED_AT))


def broken_then(rig: NotifierRig, status: str, reason: str | None) -> Connection:
    """A broken connection whose episode the customer was told about, now ended where only a new link helps."""
    rig.clock.at(T0 + timedelta(minutes=6))
    rig.notifier.on_needs_attention(attention(rig.connection(since=T0)))
    assert len(sent_emails()) == 1
    rig.clock.at(ENDED_AT)
    return rig.connection(status=status, reason=reason, action=Action.START_NEW_CONNECTION, episode_id=None)


def ended(connection: Connection, resolution: str, at: datetime = ENDED_AT) -> ConnectionAttentionEnded:
    return ConnectionAttentionEnded(
        connection_id=connection.connection_id,
        external_customer_id=connection.external_customer_id,
        institution_id=connection.institution_id,
        institution_name=connection.institution_name,
        status=connection.status,
        status_reason=connection.status_reason,
        action=Action.START_NEW_CONNECTION,
        episode_id="episode-1",
        event_time=at,
        attention_since=T0,
        resolution=resolution,
    )


ENDINGS = {
    "repairs kept failing": (
        "REPAIR_FAILED",
        "RECONNECT_REQUIRED",
        "LOGIN_REQUIRED",
        "Reconnecting Chase has not worked",
    ),
    "expired": ("EXPIRED", "EXPIRED", None, "Your connection to Chase has expired"),
    "deleted": ("DELETED", "DELETED", None, "Your connection to Chase was removed"),
}


@pytest.mark.parametrize("ending", ENDINGS.values(), ids=ENDINGS.keys())
def test_one_link_again_message_goes_out_when_only_a_new_link_helps(
    rig: NotifierRig, ending: tuple[str, str, str | None, str]
) -> None:
    resolution, status, reason, happened = ending
    rig.preferences()
    connection = broken_then(rig, status, reason)
    # Registered, then sent after the digest window (connections ending together go out as one message)
    assert rig.notifier.on_attention_ended(ended(connection, resolution)).messages_sent == 0
    rig.clock.at(AFTER_WINDOW)
    assert rig.notifier.sweep().messages_sent == 1
    email = sent_emails()[-1]
    assert email.subject == "Link your Chase account again"
    assert happened in email.body
    assert "Link Chase again" in email.body
    assert "https://app.example.com/connections/conn-1/reconnect" in email.body
    # Said once: a duplicate event, later sweeps, the days after
    assert rig.notifier.on_attention_ended(ended(connection, resolution)).messages_sent == 0
    for days in (1, 3, 7):
        rig.clock.at(ENDED_AT + timedelta(days=days))
        assert rig.notifier.sweep().messages_sent == 0
    assert len(sent_emails()) == 2


@pytest.mark.parametrize("resolution", ["REPAIRED", "SUPERSEDED"])
def test_an_episode_that_ended_well_or_was_replaced_gets_no_link_again_message(
    rig: NotifierRig, resolution: str
) -> None:
    rig.preferences()
    connection = broken_then(rig, "ACTIVE", None)
    assert rig.notifier.on_attention_ended(ended(connection, resolution)).messages_sent == 0
    rig.clock.at(AFTER_WINDOW)
    assert rig.notifier.sweep().messages_sent == 0
    assert len(sent_emails()) == 1


def test_an_opted_out_customer_is_not_told_to_link_again(rig: NotifierRig) -> None:
    rig.preferences()
    connection = broken_then(rig, "EXPIRED", None)
    rig.preferences(opted_out=True)
    rig.notifier.on_attention_ended(ended(connection, "EXPIRED"))
    rig.clock.at(AFTER_WINDOW)
    outcome = rig.notifier.sweep()
    assert (outcome.messages_sent, outcome.suppressed["OPTED_OUT"]) == (0, 1)
    assert len(sent_emails()) == 1


def test_in_quiet_hours_the_link_again_message_waits_for_their_end(rig: NotifierRig) -> None:
    rig.preferences()
    connection = broken_then(rig, "EXPIRED", None)
    rig.preferences(quiet=(time(11, 0), time(13, 0)))  # ENDED_AT is 11:30 UTC
    rig.notifier.on_attention_ended(ended(connection, "EXPIRED"))
    rig.clock.at(AFTER_WINDOW)
    assert rig.notifier.sweep().deferred["QUIET_HOURS"] == 1
    rig.clock.at(ENDED_AT.replace(hour=13, minute=1))
    assert rig.notifier.sweep().messages_sent == 1
    assert sent_emails()[-1].subject == "Link your Chase account again"


def test_a_connection_linked_again_before_the_message_goes_out_is_not_told_to(rig: NotifierRig) -> None:
    rig.preferences()
    connection = broken_then(rig, "EXPIRED", None)
    rig.preferences(quiet=(time(11, 0), time(13, 0)))
    rig.notifier.on_attention_ended(ended(connection, "EXPIRED"))
    # Meanwhile the customer linked the bank again: the old connection is replaced
    rig.connection(
        status="EXPIRED", reason=None, action=Action.NONE, episode_id=None
    )  # superseded connections ask nothing (action NONE)
    rig.clock.at(ENDED_AT.replace(hour=13, minute=1))
    outcome = rig.notifier.sweep()
    assert (outcome.messages_sent, outcome.suppressed["EPISODE_ENDED"]) == (0, 1)
    assert len(sent_emails()) == 1
