"""A message the provider keeps refusing is retried less and less often and given up in the end; a backlog of due
messages (a notifier outage) is caught up however old, and its age reported."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from connection_repair.adapters.dynamodb.keys import SHARDS
from connection_repair.adapters.dynamodb.notification_items import due_partitions
from connection_repair.notify.outcome import DeliveryFailed
from connection_repair.notify.schedule import MAX_DELIVERY_ATTEMPTS, retry_delay
from local.aws_resources import LocalResources
from tests.notifier_support import T0, Clock, FlakyChannel, NotifierRig, attention, build_notifier, sent_emails

FIRST_SEND = T0 + timedelta(minutes=6)


def flaky_rig(aws: LocalResources, failures: int) -> tuple[NotifierRig, FlakyChannel]:
    flaky: list[FlakyChannel] = []

    def wrap(channel: Any) -> Any:
        flaky.append(FlakyChannel(channel, failures=failures))
        return flaky[0]

    rig = build_notifier(aws.table_name, Clock(FIRST_SEND), wrap=wrap)
    rig.preferences()
    return rig, flaky[0]


def test_retries_back_off_and_a_message_refused_for_now_every_time_is_given_up_counted(aws: LocalResources) -> None:
    rig, flaky = flaky_rig(aws, failures=1000)
    with pytest.raises(DeliveryFailed):
        rig.notifier.on_needs_attention(attention(rig.connection(), at=T0))
    # Each failed delivery is counted on the episode and pushes the message further out
    for attempts in range(1, MAX_DELIVERY_ATTEMPTS - 1):
        notice = rig.episode()
        assert notice is not None
        assert (notice.delivery_attempts, notice.next_message) == (attempts, 0)
        assert notice.due_at == rig.clock.now + retry_delay(attempts)
        # Not a moment before it is due
        if retry_delay(attempts) > timedelta(0):
            rig.clock.at(notice.due_at - timedelta(seconds=1))
            assert rig.notifier.sweep().items_read == 0
        rig.clock.at(notice.due_at)
        assert rig.notifier.sweep().failures == 1
    # The last attempt fails too: the message is given up (counted) and the episode moves on to its reminder
    notice = rig.episode()
    assert notice is not None
    rig.clock.at(notice.due_at or rig.clock.now)
    last = rig.notifier.sweep()
    assert (last.failures, last.suppressed["RETRIES_EXHAUSTED"]) == (1, 1)
    assert rig.episode_notes() == {"skipped#0": "RETRIES_EXHAUSTED"}
    given_up = rig.episode()
    assert given_up is not None
    assert (given_up.next_message, given_up.delivery_attempts, given_up.messages_sent) == (1, 0, 0)
    assert flaky.calls == MAX_DELIVERY_ATTEMPTS
    assert sent_emails() == []


def test_the_retry_delays_grow_to_a_ceiling_and_the_attempts_span_more_than_a_day() -> None:
    delays = [retry_delay(n) for n in range(1, MAX_DELIVERY_ATTEMPTS)]
    assert delays[:4] == [timedelta(0), timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert delays == sorted(delays)
    assert max(delays) == timedelta(hours=6)
    assert sum(delays, timedelta(0)) > timedelta(days=1)


def test_a_message_refused_for_now_goes_out_on_the_next_attempt_and_its_count_starts_again(aws: LocalResources) -> None:
    rig, flaky = flaky_rig(aws, failures=2)
    with pytest.raises(DeliveryFailed):
        rig.notifier.on_needs_attention(attention(rig.connection(), at=T0))
    assert rig.notifier.sweep().failures == 1
    notice = rig.episode()
    assert notice is not None
    assert notice.due_at is not None
    rig.clock.at(notice.due_at)
    assert rig.notifier.sweep().messages_sent == 1
    sent = rig.episode()
    assert sent is not None
    assert (sent.next_message, sent.delivery_attempts) == (1, 0)
    assert (flaky.calls, len(sent_emails())) == (3, 1)


def test_messages_due_during_a_notifier_outage_of_days_are_all_sent_by_the_first_sweep(aws: LocalResources) -> None:
    # Given three customers told nothing: their messages fell due on three different days, the notifier was down
    rig = build_notifier(aws.table_name, Clock(T0))
    for day, customer in enumerate(("customer-1", "customer-2", "customer-3")):
        rig.clock.at(T0 + timedelta(days=day))
        rig.preferences(customer)
        rig.notifier.on_needs_attention(
            attention(rig.connection(f"conn-{day}", customer=customer, episode_id=f"episode-{day}"))
        )
    assert sent_emails() == []

    # When the notifier sweeps again, six days after the first was due
    rig.clock.at(T0 + timedelta(days=6))
    outcome = rig.notifier.sweep()

    # Then every one of them is sent, and the oldest one's wait reported
    assert outcome.messages_sent == 3
    assert sorted(email.destinations["ToAddresses"][0] for email in sent_emails()) == ["ada@example.com"] * 3
    assert outcome.oldest_due_seconds == (timedelta(days=6) - timedelta(minutes=5)).total_seconds()


# A day's due partitions: the unsharded one earlier versions wrote, then the shards.
PER_DAY = 1 + SHARDS


def days(*names: str) -> list[str]:
    return [partition for name in names for partition in due_partitions(date.fromisoformat(name))]


def test_a_sweep_reads_from_the_oldest_day_that_still_holds_a_due_message(aws: LocalResources) -> None:
    rig = build_notifier(aws.table_name, Clock(T0))
    rig.preferences()
    rig.notifier.on_needs_attention(attention(rig.connection()))
    queries: list[str] = []
    rig.store._client.meta.events.register(
        "provide-client-params.dynamodb.Query",
        lambda params, **_: queries.append(params["ExpressionAttributeValues"][":due"]["S"]),
    )
    # Two days later: every day up to now is read (the message due on the first is found and sent)
    rig.clock.at(T0 + timedelta(days=2))
    assert rig.notifier.sweep().messages_sent == 1
    assert queries[-3 * PER_DAY :] == days("2026-11-25", "2026-11-26", "2026-11-27")
    # The next sweep reads from that day again (what a sweep reads may stay due: its time ran out) and finds the
    # past days empty; from then on, past days are empty for good and only today is read
    queries.clear()
    assert rig.notifier.sweep().items_read == 0
    assert queries == days("2026-11-25", "2026-11-26", "2026-11-27")
    queries.clear()
    writes: list[str] = []
    rig.store._client.meta.events.register(
        "provide-client-params.dynamodb.PutItem", lambda params, **_: writes.append(params["Item"]["pk"]["S"])
    )
    assert rig.notifier.sweep().oldest_due_seconds == 0
    assert queries == days("2026-11-27")
    assert writes == []  # the watermark did not move: nothing written


def test_a_late_event_about_an_old_break_is_due_now_never_on_a_past_day(aws: LocalResources) -> None:
    # Meld delivers the break three days late (its retries), to a customer with no contact on file
    now = T0 + timedelta(days=3)
    rig = build_notifier(aws.table_name, Clock(now))
    written: list[str] = []
    rig.store._client.meta.events.register(
        "provide-client-params.dynamodb.PutItem",
        lambda params, **_: written.append(params["Item"].get("gsi2pk", {}).get("S", "")),
    )
    rig.notifier.on_needs_attention(attention(rig.connection(since=T0), at=T0))
    # The first message was registered due now, in today's partition, not on the day of the break
    assert [partition.rpartition("#")[0] for partition in written] == ["NOTIFY_DUE#2026-11-28"]
    # And, suppressed (no contact), its first reminder (due a day after the break) is due now too
    notice = rig.episode()
    assert notice is not None
    assert (notice.next_message, notice.due_at) == (1, now)
