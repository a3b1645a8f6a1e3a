"""The notifier end to end on moto (DynamoDB, SES v2, SNS) with an injected clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import Any

import boto3
import pytest

from connection_repair.adapters.dynamodb.keys import preferences_key
from connection_repair.adapters.dynamodb.notification_items import claim_key, customer_key, episode_key
from connection_repair.domain.status_policy import Action
from connection_repair.notify.outcome import DeliveryFailed
from connection_repair.notify.policy import Suppressed
from connection_repair.notify.records import MessageClaim
from connection_repair.platform.clock import utc_stamp
from connection_repair.preferences.model import Channel
from local.aws_resources import LocalResources
from tests.notifier_support import (
    T0,
    Clock,
    FlakyChannel,
    NotifierRig,
    attention,
    build_notifier,
    sent_emails,
    sent_sms,
)

AFTER_WINDOW = timedelta(minutes=6)
# Reminders are due a day and three days after the first message (which waits out the 5-minute digest window).
REMINDER_1 = timedelta(days=1, minutes=6)
REMINDER_2 = timedelta(days=3, minutes=6)


def claimed_by_another_process(rig: NotifierRig, episodes: list[str], *, at: datetime) -> datetime:
    """Another process claimed these episodes' first messages (and the customer's slot) at ``at``; its lease's end."""
    lease_until = at + timedelta(minutes=15)
    rig.store.claim(
        "customer-1",
        [MessageClaim(episode, 0) for episode in episodes],
        token="another-process",
        now=at,
        previous_sent_at=None,
        lease_until=lease_until,
    )
    return lease_until


@pytest.fixture
def rig(aws: LocalResources) -> Iterator[NotifierRig]:
    return build_notifier(aws.table_name, Clock())


def test_a_whole_episode_notify_remind_repair_then_nothing(rig: NotifierRig) -> None:
    # Given a customer with email and a connection that broke at T0
    rig.preferences()
    connection = rig.connection()
    rig.notifier.on_needs_attention(attention(connection))
    assert sent_emails() == []  # the digest window: not yet

    # When the sweep runs after the window: the first message
    rig.clock.at(T0 + AFTER_WINDOW)
    assert rig.notifier.sweep().messages_sent == 1
    assert rig.notifier.sweep().messages_sent == 0

    # After one day: the first reminder; nothing between reminders
    rig.clock.at(T0 + REMINDER_1)
    assert rig.notifier.sweep().messages_sent == 1
    rig.clock.at(T0 + timedelta(days=2))
    assert rig.notifier.sweep().messages_sent == 0

    # The customer repairs the connection; the webhook writer announces it
    rig.clock.at(T0 + timedelta(days=2, hours=1))
    rig.repair()
    repaired = rig.notifier.on_attention_ended(_repaired(connection, T0 + timedelta(days=2, hours=1)))
    assert repaired.ended == [("REPAIRED", timedelta(days=2, hours=1).total_seconds(), 1)]

    # Then nothing more, ever
    for days in (3, 4, 10):
        rig.clock.at(T0 + timedelta(days=days, minutes=6))
        assert rig.notifier.sweep().messages_sent == 0
    emails = sent_emails()
    assert [email.subject for email in emails] == [
        "Reconnect your Chase account",
        "Reminder: Reconnect your Chase account",
    ]
    assert all(email.destinations["ToAddresses"] == ["ada@example.com"] for email in emails)
    # A repeated Repaired event changes nothing and is not counted twice
    assert rig.notifier.on_attention_ended(_repaired(connection, T0 + timedelta(days=2, hours=1))).ended == []


def test_all_three_messages_then_the_schedule_is_exhausted(rig: NotifierRig) -> None:
    rig.preferences()
    rig.notifier.on_needs_attention(attention(rig.connection()))
    for moment in (AFTER_WINDOW, REMINDER_1, REMINDER_2, timedelta(days=9)):
        rig.clock.at(T0 + moment)
        rig.notifier.sweep()
    assert len(sent_emails()) == 3
    notice = rig.episode()
    assert notice is not None
    assert notice.due_at is None
    assert notice.reminders_sent == 2


def test_nothing_is_sent_once_the_connection_is_active_again_even_before_the_repaired_event(rig: NotifierRig) -> None:
    rig.preferences()
    rig.notifier.on_needs_attention(attention(rig.connection()))
    rig.repair()  # state says ACTIVE; the Repaired event has not reached the notifier yet
    rig.clock.at(T0 + AFTER_WINDOW)
    outcome = rig.notifier.sweep()
    assert outcome.messages_sent == 0
    assert outcome.suppressed[Suppressed.EPISODE_ENDED] == 1
    assert sent_emails() == []
    rig.clock.at(T0 + REMINDER_1)
    assert rig.notifier.sweep().items_read == 0


def test_a_replaced_episode_is_not_announced_only_the_new_one(rig: NotifierRig) -> None:
    rig.preferences()
    old = rig.connection(
        episode_id="episode-1", status="ACTIVE", reason="ACCESS_EXPIRING_SOON", action=Action.RENEW_ACCESS
    )
    rig.notifier.on_needs_attention(attention(old))
    # The connection moved on to a new episode (RECONNECT_REQUIRED supersedes ACCESS_EXPIRING_SOON)
    new = rig.connection(episode_id="episode-2", since=T0 + timedelta(minutes=1))
    rig.notifier.on_needs_attention(attention(new))
    rig.clock.at(T0 + timedelta(minutes=7))
    outcome = rig.notifier.sweep()
    assert outcome.messages_sent == 1
    assert outcome.suppressed[Suppressed.EPISODE_ENDED] == 1
    assert [email.subject for email in sent_emails()] == ["Reconnect your Chase account"]


def test_duplicates_of_the_triggering_event_send_one_message(rig: NotifierRig) -> None:
    rig.preferences()
    event = attention(rig.connection(since=T0))
    rig.clock.at(T0 + AFTER_WINDOW)  # late delivery: due at once, sent by the event itself
    first = rig.notifier.on_needs_attention(event)
    again = rig.notifier.on_needs_attention(event)
    rig.notifier.on_needs_attention(event)
    rig.notifier.sweep()
    assert first.messages_sent == 1
    assert again.messages_sent == 0
    assert again.suppressed[Suppressed.DUPLICATE] == 1
    assert len(sent_emails()) == 1


def test_quiet_hours_defer_to_the_next_allowed_local_time(rig: NotifierRig) -> None:
    # Berlin is UTC+1 in November; quiet 22:00-07:00 local is 21:00-06:00 UTC
    rig.preferences(timezone="Europe/Berlin", quiet=(time(22), time(7)))
    broke = T0.replace(hour=21, minute=30)  # 22:30 in Berlin
    rig.notifier.on_needs_attention(attention(rig.connection(since=broke)))
    rig.clock.at(broke + AFTER_WINDOW)
    outcome = rig.notifier.sweep()
    assert outcome.messages_sent == 0
    assert outcome.deferred["QUIET_HOURS"] == 1
    assert rig.episode_notes() == {"deferred#0": "QUIET_HOURS"}  # what `make inspect` shows
    notice = rig.episode()
    assert notice is not None
    assert notice.due_at == (T0 + timedelta(days=1)).replace(hour=6, minute=0)
    rig.clock.at(notice.due_at - timedelta(minutes=1))  # 06:59 in Berlin: still quiet, and not even read
    assert rig.notifier.sweep().items_read == 0
    rig.clock.at(notice.due_at + timedelta(minutes=1))
    assert rig.notifier.sweep().messages_sent == 1
    assert len(sent_emails()) == 1


def test_several_connections_needing_attention_go_out_as_one_message(rig: NotifierRig) -> None:
    rig.preferences()
    for number, bank in enumerate(("Chase", "Citi", "Wells Fargo")):
        connection = rig.connection(f"conn-{number}", institution=bank, episode_id=f"episode-{number}")
        rig.clock.at(T0 + timedelta(seconds=30 * number))
        rig.notifier.on_needs_attention(attention(connection, at=T0 + timedelta(seconds=30 * number)))
    rig.clock.at(T0 + AFTER_WINDOW)
    assert rig.notifier.sweep().messages_sent == 1
    (email,) = sent_emails()
    assert email.subject == "3 bank connections need your attention"
    for number, bank in enumerate(("Chase", "Citi", "Wells Fargo")):
        assert bank in email.body
        assert f"https://app.example.com/connections/conn-{number}/reconnect" in email.body


def test_at_most_one_message_per_customer_per_24_hours(rig: NotifierRig) -> None:
    rig.preferences()
    rig.notifier.on_needs_attention(attention(rig.connection("conn-a", institution="Chase", episode_id="ep-a")))
    rig.clock.at(T0 + AFTER_WINDOW)
    assert rig.notifier.sweep().messages_sent == 1
    first_sent = rig.clock.now

    # A second connection breaks two hours later: capped until 24 h after the first message
    later = T0 + timedelta(hours=2)
    rig.clock.at(later)
    rig.notifier.on_needs_attention(
        attention(rig.connection("conn-b", institution="Citi", episode_id="ep-b", since=later))
    )
    rig.clock.at(later + AFTER_WINDOW)
    outcome = rig.notifier.sweep()
    assert outcome.messages_sent == 0
    assert outcome.deferred["DAILY_CAP"] == 1
    rig.clock.at(first_sent + timedelta(hours=23, minutes=59))
    assert rig.notifier.sweep().messages_sent == 0

    # At 24 h: one message, with Citi's first message and Chase's first reminder together
    rig.clock.at(first_sent + timedelta(hours=24, minutes=1))
    assert rig.notifier.sweep().messages_sent == 1
    emails = sent_emails()
    assert len(emails) == 2
    assert "Chase" in emails[1].body
    assert "Citi" in emails[1].body
    assert emails[1].subject == "2 bank connections need your attention"


def test_a_failing_send_is_released_and_retried_without_a_double_send(aws: LocalResources) -> None:
    flaky: list[FlakyChannel] = []

    def wrap(channel: Any) -> Any:
        flaky.append(FlakyChannel(channel, failures=1))
        return flaky[0]

    rig = build_notifier(aws.table_name, Clock(T0 + AFTER_WINDOW), wrap=wrap)
    rig.preferences()
    event = attention(rig.connection(since=T0))
    # The provider refuses: the event fails (EventBridge/Lambda retry it), nothing is held
    with pytest.raises(DeliveryFailed, match=r"^1 message\(s\) failed to send$"):
        rig.notifier.on_needs_attention(event)
    assert sent_emails() == []
    assert rig.store.get_claim("customer-1", "episode-1", 0) is None
    assert rig.store.get_customer_state("customer-1").last_sent_at is None
    # The retry (and any sweep after it) sends exactly once
    assert rig.notifier.on_needs_attention(event).messages_sent == 1
    assert rig.notifier.sweep().messages_sent == 0
    assert rig.notifier.on_needs_attention(event).messages_sent == 0
    assert len(sent_emails()) == 1
    assert flaky[0].calls == 2


def test_a_message_that_keeps_failing_is_retried_across_days_until_it_goes_out(aws: LocalResources) -> None:
    flaky: list[FlakyChannel] = []

    def wrap(channel: Any) -> Any:
        flaky.append(FlakyChannel(channel, failures=3))
        return flaky[0]

    rig = build_notifier(aws.table_name, Clock(), wrap=wrap)
    rig.preferences()
    rig.notifier.on_needs_attention(attention(rig.connection()))
    # Each failing sweep keeps it due "now", so it moves along with the days and is never left behind
    for moment in (AFTER_WINDOW, timedelta(days=1, hours=1), timedelta(days=2, hours=2)):
        rig.clock.at(T0 + moment)
        assert rig.notifier.sweep().failures == 1
    rig.clock.at(T0 + timedelta(days=3, hours=3))
    assert rig.notifier.sweep().messages_sent == 1
    rig.clock.at(T0 + timedelta(days=3, hours=4))
    assert rig.notifier.sweep().messages_sent == 0
    assert len(sent_emails()) == 1
    assert flaky[0].calls == 4


def test_a_claim_abandoned_mid_send_is_never_sent_again(rig: NotifierRig) -> None:
    # Given a process that claimed the first message and died before marking it (maybe it was sent)
    rig.preferences()
    rig.notifier.on_needs_attention(attention(rig.connection()))
    claimed_at = T0 + AFTER_WINDOW
    claimed_by_another_process(rig, ["episode-1"], at=claimed_at)
    # While the lease lasts, and within the daily cap its claim took, nothing is sent
    rig.clock.at(claimed_at + timedelta(minutes=5))
    assert rig.notifier.sweep().messages_sent == 0
    # Afterwards: counted as (maybe) sent, never sent a second time; the schedule moves on
    rig.clock.at(claimed_at + timedelta(hours=24, minutes=1))
    outcome = rig.notifier.sweep()
    assert outcome.messages_sent == 0
    assert outcome.suppressed[Suppressed.UNCERTAIN] == 1
    assert sent_emails() == []
    claim = rig.store.get_claim("customer-1", "episode-1", 0)
    assert claim is not None
    assert claim.state == "UNCERTAIN"
    notice = rig.episode()
    assert notice is not None
    assert notice.next_message == 1


def test_opted_out_customers_get_nothing_on_any_channel(rig: NotifierRig) -> None:
    rig.preferences(phone="+14155550123", channels=(Channel.EMAIL, Channel.SMS), opted_out=True)
    rig.notifier.on_needs_attention(attention(rig.connection()))
    suppressed = 0
    for moment in (AFTER_WINDOW, REMINDER_1, REMINDER_2):
        rig.clock.at(T0 + moment)
        outcome = rig.notifier.sweep()
        suppressed += outcome.suppressed[Suppressed.OPTED_OUT]
    assert suppressed == 3
    assert sent_emails() == []
    assert sent_sms() == []
    assert rig.episode_notes() == {f"skipped#{number}": "OPTED_OUT" for number in range(3)}


@pytest.mark.parametrize(
    "preferences",
    [None, {"email": None, "channels": (Channel.EMAIL,)}, {"email": "ada@example.com", "channels": (Channel.SMS,)}],
    ids=["no-preferences", "no-email", "sms-without-phone"],
)
def test_no_contact_on_file_sends_nothing_and_is_counted(rig: NotifierRig, preferences: dict[str, Any] | None) -> None:
    if preferences is not None:
        rig.preferences(**preferences)
    rig.notifier.on_needs_attention(attention(rig.connection()))
    rig.clock.at(T0 + AFTER_WINDOW)
    outcome = rig.notifier.sweep()
    assert outcome.suppressed[Suppressed.NO_CONTACT] == 1
    assert sent_emails() == []
    assert sent_sms() == []


def test_sms_goes_to_the_phone_on_file_with_the_link(rig: NotifierRig) -> None:
    rig.preferences(email=None, phone="+14155550123", channels=(Channel.SMS,))
    rig.notifier.on_needs_attention(attention(rig.connection()))
    rig.clock.at(T0 + AFTER_WINDOW)
    assert rig.notifier.sweep().sent_by_channel == {"SMS": 1}
    ((phone, text),) = sent_sms()
    assert phone == "+14155550123"
    assert text.startswith("Budgetly: ")
    assert "Chase" in text
    assert "https://app.example.com/connections/conn-1/reconnect" in text


def test_a_phone_that_answered_stop_gets_no_sms_and_is_marked_unusable_with_why(rig: NotifierRig) -> None:
    opted_out = "+14155550199"  # moto's SNS: numbers ending in 99 are opted out
    rig.preferences(email="ada@example.com", phone=opted_out, channels=(Channel.SMS, Channel.EMAIL))
    rig.notifier.on_needs_attention(attention(rig.connection()))
    rig.clock.at(T0 + AFTER_WINDOW)

    outcome = rig.notifier.sweep()

    assert (outcome.sent_by_channel, sent_sms()) == ({"EMAIL": 1}, [])  # the customer is still told, by email
    assert rig.store.get_customer_state("customer-1").unusable == {Channel.SMS: opted_out}
    slot = boto3.client("dynamodb").get_item(TableName=rig.table_name, Key=customer_key("customer-1"))["Item"]
    assert slot["unusableSMS"]["M"]["reason"] == {"S": "OPTED_OUT"}


def test_new_accounts_only_with_opt_in_and_at_most_once(rig: NotifierRig) -> None:
    rig.preferences(new_accounts_opt_in=True)
    connection = rig.connection(status="ACTIVE", reason="NEW_ACCOUNTS_AVAILABLE", action=Action.ADD_ACCOUNTS)
    rig.notifier.on_needs_attention(attention(connection))
    for moment in (AFTER_WINDOW, REMINDER_1, REMINDER_2):
        rig.clock.at(T0 + moment)
        rig.notifier.sweep()
    (email,) = sent_emails()
    assert email.subject == "New accounts available at Chase"


def test_new_accounts_without_opt_in_are_not_announced(rig: NotifierRig) -> None:
    rig.preferences()
    connection = rig.connection(status="ACTIVE", reason="NEW_ACCOUNTS_AVAILABLE", action=Action.ADD_ACCOUNTS)
    rig.notifier.on_needs_attention(attention(connection))
    rig.clock.at(T0 + AFTER_WINDOW)
    assert rig.notifier.sweep().suppressed[Suppressed.NOT_OPTED_IN] == 1
    assert sent_emails() == []


def test_transient_outages_send_nothing(rig: NotifierRig) -> None:
    rig.preferences()
    connection = rig.connection(status="DEGRADED", reason="INSTITUTION_CURRENTLY_UNAVAILABLE", action=Action.WAIT)
    outcome = rig.notifier.on_needs_attention(attention(connection, action=Action.WAIT))
    assert outcome.suppressed[Suppressed.TRANSIENT] == 1
    assert rig.episode() is None


def test_a_reminder_during_a_transient_outage_waits_for_it_to_pass(rig: NotifierRig) -> None:
    rig.preferences()
    rig.notifier.on_needs_attention(attention(rig.connection()))
    # Same episode, but the bank is down right now (WAIT neither opens nor ends an episode)
    rig.connection(status="DEGRADED", reason="INSTITUTION_CURRENTLY_UNAVAILABLE", action=Action.WAIT)
    rig.clock.at(T0 + AFTER_WINDOW)
    outcome = rig.notifier.sweep()
    assert outcome.deferred["TRANSIENT_OUTAGE"] == 1
    assert sent_emails() == []
    assert rig.episode_notes() == {"deferred#0": "TRANSIENT_OUTAGE"}
    waiting = rig.episode()
    assert waiting is not None
    assert (waiting.next_message, waiting.due_at) == (0, T0 + AFTER_WINDOW + timedelta(hours=1))
    assert rig.store.get_claim("customer-1", "episode-1", 0) is None  # released, not held through the outage
    rig.connection()  # back to RECONNECT_REQUIRED in the same episode
    rig.clock.at(T0 + AFTER_WINDOW + timedelta(hours=1, minutes=1))
    assert rig.notifier.sweep().messages_sent == 1


def test_the_email_has_text_and_html_parts_names_the_bank_and_carries_no_secret(aws: LocalResources) -> None:
    captured: list[dict[str, Any]] = []
    rig = build_notifier(aws.table_name, Clock())
    ses = boto3.client("sesv2")
    ses.meta.events.register("provide-client-params.sesv2.SendEmail", lambda params, **_: captured.append(params))
    from connection_repair.adapters.ses import SesEmailChannel

    rig.channels[Channel.EMAIL] = SesEmailChannel(ses, "notifications@app.example.com")
    rig.preferences()
    rig.notifier.on_needs_attention(attention(rig.connection()))
    rig.clock.at(T0 + AFTER_WINDOW)
    rig.notifier.sweep()
    (params,) = captured
    body = params["Content"]["Simple"]["Body"]
    text, html = body["Text"]["Data"], body["Html"]["Data"]
    for part in (text, html):
        assert "Chase" in part
        assert "sign in again" in part
        assert "https://app.example.com/connections/conn-1/reconnect" in part
    assert html.startswith("<!doctype html>")
    assert "<a href=" in html
    everything = json.dumps(params).lower()
    for secret in ("token", "apikey", "api key", "secret", "password", "provider-access"):
        assert secret not in everything


def test_the_sweep_reads_only_what_is_due(rig: NotifierRig) -> None:
    rig.preferences()
    for number in range(12):
        connection = rig.connection(f"conn-{number}", customer=f"customer-{number}", episode_id=f"ep-{number}")
        rig.notifier.on_needs_attention(attention(connection, at=T0 + timedelta(hours=number)))
    rig.clock.at(T0 + timedelta(hours=2, minutes=6))
    outcome = rig.notifier.sweep()
    assert outcome.items_read == 3  # episodes 0, 1, 2; the other nine are not due and not read
    assert rig.store.last_read_count == 3


def _repaired(connection: Any, at: Any) -> Any:
    from local.make_notifier_events import repaired

    return repaired(attention(connection), at=at)


def test_a_closed_episode_is_recorded_as_closed_with_how_and_when(rig: NotifierRig) -> None:
    rig.preferences()
    connection = rig.connection()
    rig.notifier.on_needs_attention(attention(connection))
    closed_at = T0 + timedelta(hours=2)
    rig.clock.at(closed_at)
    outcome = rig.notifier.on_attention_ended(_repaired(connection, closed_at))
    assert outcome.ended == [("REPAIRED", timedelta(hours=2).total_seconds(), 0)]
    assert rig.notifier.on_attention_ended(_repaired(connection, closed_at)).suppressed == {Suppressed.DUPLICATE: 1}

    item = boto3.client("dynamodb").get_item(
        TableName=rig.table_name, Key=episode_key("customer-1", "episode-1"), ConsistentRead=True
    )["Item"]
    # What support reads to answer "was I told, and when did it end?"
    assert item["closed"] == {"BOOL": True}
    assert item["resolution"] == {"S": "REPAIRED"}
    assert item["closedAt"] == {"S": utc_stamp(closed_at)}
    assert (item["episodeId"], item["connectionId"]) == ({"S": "episode-1"}, {"S": "conn-1"})
    assert not {"dueAt", "gsi2pk", "gsi2sk"} & item.keys()  # out of the due index
    assert int(item["expiresAt"]["N"]) == int((closed_at + timedelta(days=180)).timestamp())


def test_a_repaired_event_before_its_needs_attention_event_closes_the_episode_in_advance(rig: NotifierRig) -> None:
    rig.preferences()
    connection = rig.connection()
    # EventBridge does not keep order: the end of the episode arrives first, at the moment it began
    outcome = rig.notifier.on_attention_ended(_repaired(connection, T0))
    assert outcome.ended == [("REPAIRED", 0.0, 0)]
    registered = rig.notifier.on_needs_attention(attention(connection))
    assert registered.suppressed[Suppressed.DUPLICATE] == 1
    rig.clock.at(T0 + AFTER_WINDOW)
    assert rig.notifier.sweep().items_read == 0
    assert sent_emails() == []


def test_an_end_reported_before_the_start_counts_zero_seconds_not_negative(rig: NotifierRig) -> None:
    connection = rig.connection()
    rig.notifier.on_needs_attention(attention(connection))
    outcome = rig.notifier.on_attention_ended(_repaired(connection, T0 - timedelta(minutes=5)))
    assert outcome.ended == [("REPAIRED", 0.0, 0)]


def test_a_suppressed_message_moves_the_episode_on_without_counting_as_sent(rig: NotifierRig) -> None:
    rig.preferences(opted_out=True)
    rig.notifier.on_needs_attention(attention(rig.connection()))
    rig.clock.at(T0 + AFTER_WINDOW)
    assert rig.notifier.sweep().suppressed == {Suppressed.OPTED_OUT: 1}
    notice = rig.episode()
    assert notice is not None
    assert (notice.next_message, notice.messages_sent, notice.reminders_sent) == (1, 0, 0)
    # The next one is due on the schedule (a day after the first), not pushed back by a daily cap
    assert notice.due_at == T0 + REMINDER_1 - timedelta(minutes=1)
    assert rig.store.get_claim("customer-1", "episode-1", 0) is None  # nothing was claimed


def test_abandoned_claims_of_a_digest_are_each_counted_once_as_maybe_sent(rig: NotifierRig) -> None:
    # Two connections' first messages claimed together by a process that died mid-send
    rig.preferences()
    for number in (1, 2):
        connection = rig.connection(f"conn-{number}", episode_id=f"episode-{number}")
        rig.notifier.on_needs_attention(attention(connection))
    claimed_at = T0 + AFTER_WINDOW
    claimed_by_another_process(rig, ["episode-1", "episode-2"], at=claimed_at)
    later = claimed_at + timedelta(hours=24, minutes=1)
    rig.clock.at(later)
    outcome = rig.notifier.sweep()
    assert outcome.suppressed[Suppressed.UNCERTAIN] == 2
    assert sent_emails() == []
    for episode in ("episode-1", "episode-2"):
        notice = rig.episode(episode_id=episode)
        assert notice is not None
        # Counted as sent (maybe it was): the reminder keeps to the daily cap from now
        assert (notice.next_message, notice.messages_sent) == (1, 1)
        assert notice.due_at == later + timedelta(hours=24)


@pytest.mark.parametrize(("after", "uncertain"), [(timedelta(0), 1), (-timedelta(microseconds=1), 0)])
def test_a_claims_lease_ends_exactly_at_its_end(aws: LocalResources, after: timedelta, uncertain: int) -> None:
    # Without a daily cap (NOTIFY_MIN_INTERVAL_HOURS=0), only the lease keeps a live send from being second-guessed
    rig = build_notifier(aws.table_name, Clock(), min_interval=timedelta(0))
    rig.preferences()
    rig.notifier.on_needs_attention(attention(rig.connection()))
    claimed_at = T0 + AFTER_WINDOW
    lease_until = claimed_by_another_process(rig, ["episode-1"], at=claimed_at)
    rig.clock.at(lease_until + after)
    assert rig.notifier.sweep().suppressed[Suppressed.UNCERTAIN] == uncertain
    assert sent_emails() == []


def test_customers_whose_delivery_breaks_are_counted_each_and_kept_due_while_the_others_are_served(
    rig: NotifierRig,
) -> None:
    # Two customers whose stored preferences cannot be read (a poison item), and one who is fine
    for customer in ("customer-1", "customer-2", "customer-3"):
        connection = rig.connection(f"conn-{customer}", customer=customer, episode_id=f"episode-{customer}")
        rig.notifier.on_needs_attention(attention(connection))
    rig.preferences("customer-3")
    for customer in ("customer-1", "customer-2"):
        boto3.client("dynamodb").put_item(
            TableName=rig.table_name,
            Item=preferences_key(customer) | {"timezone": {"S": "Mars/Olympus_Mons"}, "channels": {"L": []}},
        )
    now = T0 + timedelta(days=1)
    rig.clock.at(now)

    outcome = rig.notifier.sweep()

    assert (outcome.failures, outcome.messages_sent) == (2, 1)
    for customer in ("customer-1", "customer-2"):
        kept = rig.episode(customer, f"episode-{customer}")
        assert kept is not None
        assert (kept.next_message, kept.due_at) == (0, now)  # due now: in today's partition, read again


def test_a_digest_whose_other_message_was_claimed_before_sends_the_rest(rig: NotifierRig) -> None:
    # Chase's first message was claimed and sent by an invocation that died before moving its episode on
    rig.preferences()
    for number, bank in ((1, "Chase"), (2, "Citi")):
        rig.notifier.on_needs_attention(
            attention(rig.connection(f"conn-{number}", institution=bank, episode_id=f"episode-{number}"))
        )
    boto3.client("dynamodb").put_item(
        TableName=rig.table_name,
        Item=claim_key("customer-1", "episode-1", 0) | {"state": {"S": "SENT"}, "token": {"S": "earlier"}},
    )
    rig.clock.at(T0 + AFTER_WINDOW)
    assert rig.notifier.sweep().messages_sent == 1
    [email] = sent_emails()
    assert email.subject == "Reconnect your Citi account"


def test_giving_the_slot_back_restores_when_the_customer_was_last_told(rig: NotifierRig) -> None:
    # The customer was told about something else two days ago; this episode ends while its message is claimed
    rig.preferences()
    two_days_ago = T0 - timedelta(days=2)
    boto3.client("dynamodb").put_item(
        TableName=rig.table_name, Item=customer_key("customer-1") | {"lastSentAt": {"S": utc_stamp(two_days_ago)}}
    )
    for number in (1, 2):
        rig.notifier.on_needs_attention(attention(rig.connection(f"conn-{number}", episode_id=f"episode-{number}")))
        rig.repair(f"conn-{number}")
    rig.clock.at(T0 + AFTER_WINDOW)
    outcome = rig.notifier.sweep()
    assert outcome.suppressed == {Suppressed.EPISODE_ENDED: 2}
    assert rig.store.get_customer_state("customer-1").last_sent_at == two_days_ago
    for number in (1, 2):
        claim = rig.store.get_claim("customer-1", f"episode-{number}", 0)
        assert claim is not None
        assert claim.state == "CANCELLED"


def test_the_message_says_what_is_true_at_send_time(rig: NotifierRig) -> None:
    # Registered as an action the bank needs; by the time it is sent, the customer must sign in again
    rig.preferences()
    degraded = rig.connection(status="DEGRADED", reason="INSTITUTION_ACTION_REQUIRED")
    rig.notifier.on_needs_attention(attention(degraded))
    rig.connection(institution="Chase Bank")  # RECONNECT_REQUIRED / LOGIN_REQUIRED, renamed by Meld
    rig.clock.at(T0 + AFTER_WINDOW)
    assert rig.notifier.sweep().messages_sent == 1
    [email] = sent_emails()
    assert "We can no longer update your data from Chase Bank: the bank needs you to sign in again." in email.body
    assert email.subject == "Reconnect your Chase Bank account"


def test_every_channel_that_fails_is_counted(aws: LocalResources) -> None:
    rig = build_notifier(aws.table_name, Clock(T0 + AFTER_WINDOW), wrap=lambda channel: FlakyChannel(channel, 9))
    sms = rig.channels[Channel.SMS]
    rig.channels[Channel.SMS] = FlakyChannel(sms, 9)
    rig.preferences(phone="+14155550123", channels=(Channel.EMAIL, Channel.SMS))
    with pytest.raises(DeliveryFailed) as failed:
        rig.notifier.on_needs_attention(attention(rig.connection(since=T0)))
    assert (failed.value.outcome.channel_failures, failed.value.outcome.failures) == (2, 1)


def test_a_send_that_fails_gives_the_slot_back_as_it_was(aws: LocalResources) -> None:
    rig = build_notifier(aws.table_name, Clock(T0 + AFTER_WINDOW), wrap=lambda channel: FlakyChannel(channel, 9))
    rig.preferences()
    two_days_ago = T0 - timedelta(days=2)
    boto3.client("dynamodb").put_item(
        TableName=rig.table_name, Item=customer_key("customer-1") | {"lastSentAt": {"S": utc_stamp(two_days_ago)}}
    )
    with pytest.raises(DeliveryFailed):
        rig.notifier.on_needs_attention(attention(rig.connection(since=T0)))
    assert rig.store.get_customer_state("customer-1").last_sent_at == two_days_ago
    assert rig.store.get_claim("customer-1", "episode-1", 0) is None


def test_a_sweep_running_out_of_time_starts_no_delivery_and_leaves_the_rest_due(rig: NotifierRig) -> None:
    for number in (1, 2):
        rig.preferences(f"customer-{number}", email=f"customer{number}@example.com")
        connection = rig.connection(f"conn-{number}", customer=f"customer-{number}", episode_id=f"ep-{number}")
        rig.notifier.on_needs_attention(attention(connection))
    rig.clock.at(T0 + timedelta(minutes=10))
    time_left = iter([60.0, 19.0])  # enough for the first customer's delivery, then less than the reserve

    outcome = rig.notifier.sweep(remaining_seconds=lambda: next(time_left))

    assert (outcome.messages_sent, outcome.customers_left) == (1, 1)
    assert len(sent_emails()) == 1
    # The next sweep sends what was left, once
    again = rig.notifier.sweep(remaining_seconds=lambda: 60.0)
    assert (again.messages_sent, again.customers_left) == (1, 0)
    assert sorted(email.destinations["ToAddresses"][0] for email in sent_emails()) == [
        "customer1@example.com",
        "customer2@example.com",
    ]


def test_counts_are_of_every_message_not_of_every_kind(rig: NotifierRig) -> None:
    # Two of one customer's connections in one digest; everything said twice is counted twice
    rig.preferences(opted_out=True)
    for number in (1, 2):
        rig.notifier.on_needs_attention(attention(rig.connection(f"conn-{number}", episode_id=f"ep-{number}")))
    rig.clock.at(T0 + AFTER_WINDOW)
    assert rig.notifier.sweep().suppressed == {Suppressed.OPTED_OUT: 2}


def test_deferrals_are_counted_per_message(rig: NotifierRig) -> None:
    rig.preferences(quiet=(time(0, 0), time(23, 59)))
    for number in (1, 2):
        rig.notifier.on_needs_attention(attention(rig.connection(f"conn-{number}", episode_id=f"ep-{number}")))
    rig.clock.at(T0 + AFTER_WINDOW)
    assert rig.notifier.sweep().deferred == {"QUIET_HOURS": 2}


def test_two_connections_of_one_digest_in_a_transient_outage_are_both_deferred(rig: NotifierRig) -> None:
    rig.preferences()
    for number in (1, 2):
        rig.notifier.on_needs_attention(attention(rig.connection(f"conn-{number}", episode_id=f"ep-{number}")))
        rig.connection(
            f"conn-{number}",
            episode_id=f"ep-{number}",
            status="DEGRADED",
            reason="INSTITUTION_CURRENTLY_UNAVAILABLE",
            action=Action.WAIT,
        )
    rig.clock.at(T0 + AFTER_WINDOW)
    assert rig.notifier.sweep().deferred == {"TRANSIENT_OUTAGE": 2}


def test_an_episode_without_a_customer_or_with_nothing_to_do_is_suppressed_once(rig: NotifierRig) -> None:
    nobody = rig.connection(customer=None)  # type: ignore[arg-type]
    assert rig.notifier.on_needs_attention(attention(nobody)).suppressed == {Suppressed.NO_CUSTOMER: 1}
    waiting = rig.connection(status="DEGRADED", reason="INSTITUTION_CURRENTLY_UNAVAILABLE", action=Action.WAIT)
    assert rig.notifier.on_needs_attention(attention(waiting, action=Action.WAIT)).suppressed == {
        Suppressed.TRANSIENT: 1
    }


def test_the_episode_kept_for_support_says_which_bank_and_what_it_was(rig: NotifierRig) -> None:
    rig.preferences()
    rig.notifier.on_needs_attention(attention(rig.connection(institution="Chase")))
    kept = rig.episode()
    assert kept is not None
    assert (kept.institution_id, kept.institution_name, kept.status, kept.status_reason) == (
        "inst-chase",
        "Chase",
        "RECONNECT_REQUIRED",
        "LOGIN_REQUIRED",
    )


@pytest.mark.parametrize(
    ("opened", "now", "said", "not_said"),
    [
        # The status changed (the reason did not): kept failing -> sign in again
        (("UNRECOVERABLE", None), ("RECONNECT_REQUIRED", None), "sign in again", "kept failing"),
        # The reason changed (the status did not): new terms -> confirm every update
        (
            ("DEGRADED", "INSTITUTION_ACTION_REQUIRED"),
            ("DEGRADED", "INTERACTIVE_REFRESH"),
            "confirm every update",
            "accept new terms",
        ),
    ],
    ids=["status", "reason"],
)
def test_the_message_says_what_is_true_when_it_is_sent_not_when_the_episode_opened(
    rig: NotifierRig, opened: tuple[str, str | None], now: tuple[str, str | None], said: str, not_said: str
) -> None:
    rig.preferences()
    rig.notifier.on_needs_attention(attention(rig.connection(status=opened[0], reason=opened[1])))
    rig.connection(status=now[0], reason=now[1])  # the same episode, in other words by the time of the send
    rig.clock.at(T0 + AFTER_WINDOW)
    assert rig.notifier.sweep().messages_sent == 1
    [email] = sent_emails()
    assert said in email.body
    assert not_said not in email.body


def test_a_deployment_without_email_does_not_choose_email_for_a_customer(rig: NotifierRig) -> None:
    from connection_repair.notify.compose import MessageComposer
    from connection_repair.notify.service import Notifier

    sms_only = Notifier(
        connections=rig.connections,
        preferences=rig.preferences_store,
        store=rig.store,
        channels={Channel.SMS: rig.channels[Channel.SMS]},
        composer=MessageComposer(
            "https://app.example.com/connections/{connectionId}/reconnect",
            settings_url="https://app.example.com/settings/notifications",
        ),
        clock=rig.clock,
    )
    rig.preferences(channels=(Channel.EMAIL,))  # the customer chose email only
    rig.notifier.on_needs_attention(attention(rig.connection()))
    rig.clock.at(T0 + AFTER_WINDOW)
    outcome = sms_only.sweep()
    assert (outcome.failures, outcome.suppressed) == (0, {Suppressed.NO_CONTACT: 1})


def test_a_sweep_with_exactly_its_reserve_left_still_delivers(rig: NotifierRig) -> None:
    rig.preferences()
    rig.notifier.on_needs_attention(attention(rig.connection()))
    rig.clock.at(T0 + AFTER_WINDOW)
    assert rig.notifier.sweep(remaining_seconds=lambda: 20.0).messages_sent == 1
