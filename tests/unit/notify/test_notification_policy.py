"""The notifier's pure policy: schedule, quiet hours, the daily cap, the plan and the digest."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connection_repair.domain.status_policy import Action
from connection_repair.notify.policy import MAX_DIGEST, Deferred, Suppressed, cap_until, next_allowed, plan_delivery
from connection_repair.notify.records import EpisodeNotice
from connection_repair.notify.schedule import ReminderSchedule
from connection_repair.platform.settings import NotifierSettings
from connection_repair.preferences.model import Channel, NotificationPreferences, QuietHours

T0 = datetime(2026, 11, 25, 11, 30, tzinfo=UTC)
DAY = timedelta(hours=24)


def notice(
    number: int = 0, *, action: Action = Action.REPAIR, bank: str = "Chase", episode: str = "ep-1"
) -> EpisodeNotice:
    return EpisodeNotice(
        episode_id=episode,
        connection_id=f"conn-{episode}",
        external_customer_id="customer-1",
        institution_name=bank,
        action=action,
        status="RECONNECT_REQUIRED",
        status_reason="LOGIN_REQUIRED",
        attention_since=T0,
        next_message=number,
        due_at=T0,
    )


def prefs(**values: object) -> NotificationPreferences:
    return NotificationPreferences.model_validate({"email": "ada@example.com", **values})


# --- schedule ---


def test_default_schedule_first_message_after_the_window_then_a_day_and_three_days_later() -> None:
    schedule = ReminderSchedule()
    first = T0 + timedelta(minutes=5)
    assert [schedule.due_at(T0, n, Action.REPAIR) for n in range(4)] == [
        first,
        first + timedelta(days=1),
        first + timedelta(days=3),
        None,
    ]


def test_new_accounts_get_one_message_and_no_reminders() -> None:
    schedule = ReminderSchedule()
    assert schedule.messages_for(Action.ADD_ACCOUNTS) == 1
    assert schedule.due_at(T0, 1, Action.ADD_ACCOUNTS) is None


def test_the_schedule_is_configurable() -> None:
    schedule = ReminderSchedule(reminder_offsets=(timedelta(hours=12),), digest_window=timedelta(0))
    assert schedule.due_at(T0, 0, Action.RENEW_ACCESS) == T0
    assert schedule.due_at(T0, 1, Action.RENEW_ACCESS) == T0 + timedelta(hours=12)
    assert schedule.due_at(T0, 2, Action.RENEW_ACCESS) is None


def test_settings_read_the_reminder_hours_and_refuse_more_than_two() -> None:
    base = {
        "TABLE_NAME": "t",
        "EVENT_BUS_NAME": "b",
        "APP_RECONNECT_URL": "https://app.example.com/c/{connectionId}",
        "APP_NOTIFICATION_SETTINGS_URL": "https://app.example.com/settings",
    }
    assert NotifierSettings.from_env(base).reminder_hours == (24.0, 72.0)
    assert NotifierSettings.from_env(base | {"NOTIFY_REMINDER_HOURS": "6, 30"}).reminder_hours == (6.0, 30.0)
    for bad in ("24,72,120", "72,24", "0"):
        with pytest.raises(ValueError, match=r"REMINDER_HOURS|reminder"):
            NotifierSettings.from_env(base | {"NOTIFY_REMINDER_HOURS": bad})
    with pytest.raises(ValueError, match=r"app_reconnect_url|APP_RECONNECT_URL"):
        NotifierSettings.from_env(base | {"APP_RECONNECT_URL": "https://app.example.com/no-placeholder"})


# --- quiet hours ---


def test_outside_quiet_hours_now_is_allowed() -> None:
    assert next_allowed(T0, prefs(quietHours={"start": "22:00", "end": "07:00"})) == T0


def test_quiet_hours_wrapping_midnight_defer_to_their_end_next_morning_in_the_customers_zone() -> None:
    # 23:30 in New York (UTC-5 in November) is 04:30 UTC
    late = datetime(2026, 11, 26, 4, 30, tzinfo=UTC)
    customer = prefs(timezone="America/New_York", quietHours={"start": "22:00", "end": "07:00"})
    assert next_allowed(late, customer) == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    # after midnight local time, the same morning
    assert next_allowed(datetime(2026, 11, 26, 9, 0, tzinfo=UTC), customer) == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_quiet_hours_within_a_day() -> None:
    customer = prefs(quietHours={"start": "12:00", "end": "14:00"})
    assert next_allowed(T0.replace(hour=12, minute=30), customer) == T0.replace(hour=14, minute=0)


@pytest.mark.parametrize(
    ("local", "allowed"),
    [
        (time(21, 59, 59, 999999), None),  # a moment before they start: send now
        (time(22, 0), datetime(2026, 11, 26, 7, 0, tzinfo=UTC)),  # exactly at the start: quiet
        (time(23, 59, 59, 999999), datetime(2026, 11, 26, 7, 0, tzinfo=UTC)),
        (time(0, 0), datetime(2026, 11, 26, 7, 0, tzinfo=UTC)),  # midnight: quiet, until the same morning
        (time(6, 59, 59, 999999), datetime(2026, 11, 26, 7, 0, tzinfo=UTC)),
        (time(7, 0), None),  # exactly at the end: allowed
    ],
)
def test_quiet_hours_wrapping_midnight_at_their_edges(local: time, allowed: datetime | None) -> None:
    customer = prefs(quietHours={"start": "22:00", "end": "07:00"})
    day = 26 if local < time(12, 0) else 25
    moment = datetime.combine(datetime(2026, 11, day).date(), local, tzinfo=UTC)
    assert next_allowed(moment, customer) == (allowed or moment)


@pytest.mark.parametrize(
    ("local", "allowed"),
    [
        (time(11, 59, 59, 999999), None),
        (time(12, 0), T0.replace(hour=14, minute=0)),  # exactly at the start: quiet
        (time(13, 59, 59, 999999), T0.replace(hour=14, minute=0)),
        (time(14, 0), None),  # exactly at the end: allowed
    ],
)
def test_quiet_hours_within_a_day_at_their_edges(local: time, allowed: datetime | None) -> None:
    customer = prefs(quietHours={"start": "12:00", "end": "14:00"})
    moment = datetime.combine(T0.date(), local, tzinfo=UTC)
    assert next_allowed(moment, customer) == (allowed or moment)


def test_quiet_hours_that_start_and_end_at_the_same_time_are_never_quiet() -> None:
    customer = prefs(quietHours={"start": "12:00", "end": "12:00"})
    for moment in (T0.replace(hour=12, minute=0), T0.replace(hour=11, minute=59), T0.replace(hour=3)):
        assert next_allowed(moment, customer) == moment


def test_quiet_hours_across_a_daylight_saving_change_end_at_local_time() -> None:
    # Berlin leaves summer time on 2026-10-25; quiet until 07:00 local = 06:00 UTC that morning
    customer = prefs(timezone="Europe/Berlin", quietHours={"start": "22:00", "end": "07:00"})
    assert next_allowed(datetime(2026, 10, 24, 22, 0, tzinfo=UTC), customer) == datetime(2026, 10, 25, 6, 0, tzinfo=UTC)


@given(
    moment=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    start=st.times(),
    end=st.times(),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]),
)
def test_the_next_allowed_time_is_never_earlier_never_quiet_and_within_a_day(
    moment: datetime, start: time, end: time, zone: str
) -> None:
    customer = prefs(timezone=zone, quietHours={"start": start.isoformat(), "end": end.isoformat()})
    allowed = next_allowed(moment, customer)
    assert moment <= allowed <= moment + timedelta(hours=26)
    quiet = QuietHours(start=start, end=end)
    if allowed != moment:
        # Deferred: to the end of the quiet hours, which is not itself quiet
        assert not quiet.contains(allowed.astimezone(customer.zone()).time().replace(tzinfo=None)) or start == end
    elif start != end:
        assert not quiet.contains(moment.astimezone(customer.zone()).time().replace(tzinfo=None))


# --- the daily cap ---


def test_the_cap_holds_for_24_hours_after_the_last_message() -> None:
    assert cap_until(None, T0, DAY) is None
    assert cap_until(T0, T0 + timedelta(hours=23), DAY) == T0 + DAY
    assert cap_until(T0, T0 + DAY, DAY) is None


# --- the plan ---


def test_plan_opted_out_suppresses_everything() -> None:
    plan = plan_delivery([notice()], prefs(optedOut=True), last_sent_at=None, now=T0, min_interval=DAY)
    assert plan.suppress == [(notice(), Suppressed.OPTED_OUT)]
    assert not plan.send


@pytest.mark.parametrize(
    "customer",
    [None, prefs(email=None), prefs(channels=["SMS"])],
    ids=["no-preferences", "no-email", "sms-without-phone"],
)
def test_plan_without_a_contact_suppresses(customer: NotificationPreferences | None) -> None:
    plan = plan_delivery([notice()], customer, last_sent_at=None, now=T0, min_interval=DAY)
    assert [reason for _, reason in plan.suppress] == [Suppressed.NO_CONTACT]


def test_plan_without_a_channel_this_deployment_can_send_on_suppresses() -> None:
    # No SenderEmail configured: email customers count as "no contact", not as a send failing forever
    plan = plan_delivery([notice()], prefs(), last_sent_at=None, now=T0, min_interval=DAY, available=[Channel.SMS])
    assert [reason for _, reason in plan.suppress] == [Suppressed.NO_CONTACT]


def test_plan_leaves_out_a_contact_refused_for_good_and_uses_the_others() -> None:
    customer = prefs(phone="+14155550123", channels=["SMS", "EMAIL"])
    refused = {Channel.SMS: "+14155550123"}
    plan = plan_delivery([notice()], customer, last_sent_at=None, now=T0, min_interval=DAY, unusable=refused)
    assert plan.channels == [Channel.EMAIL]


def test_plan_with_every_contact_refused_for_good_suppresses_with_that_reason() -> None:
    refused = {Channel.EMAIL: "ada@example.com"}
    plan = plan_delivery([notice()], prefs(), last_sent_at=None, now=T0, min_interval=DAY, unusable=refused)
    assert [reason for _, reason in plan.suppress] == [Suppressed.CONTACT_UNUSABLE]


def test_plan_sends_to_a_new_address_on_a_channel_whose_old_one_was_refused() -> None:
    refused = {Channel.EMAIL: "old@example.com"}
    plan = plan_delivery([notice()], prefs(), last_sent_at=None, now=T0, min_interval=DAY, unusable=refused)
    assert (plan.channels, plan.suppress) == ([Channel.EMAIL], [])


def test_plan_sends_on_every_channel_with_a_contact() -> None:
    customer = prefs(phone="+14155550123", channels=["SMS", "EMAIL"])
    plan = plan_delivery([notice()], customer, last_sent_at=None, now=T0, min_interval=DAY)
    assert plan.channels == [Channel.SMS, Channel.EMAIL]


def test_plan_new_accounts_need_the_opt_in() -> None:
    due = [notice(action=Action.ADD_ACCOUNTS)]
    assert plan_delivery(due, prefs(), last_sent_at=None, now=T0, min_interval=DAY).suppress[0][1] == (
        Suppressed.NOT_OPTED_IN
    )
    assert plan_delivery(due, prefs(newAccountsOptIn=True), last_sent_at=None, now=T0, min_interval=DAY).send == due


def test_plan_defers_under_the_cap_then_in_quiet_hours() -> None:
    capped = plan_delivery([notice()], prefs(), last_sent_at=T0 - timedelta(hours=1), now=T0, min_interval=DAY)
    assert (capped.defer_reason, capped.defer_until) == (Deferred.DAILY_CAP, T0 + timedelta(hours=23))
    quiet = prefs(quietHours={"start": "11:00", "end": "12:00"})
    deferred = plan_delivery([notice()], quiet, last_sent_at=None, now=T0, min_interval=DAY)
    assert (deferred.defer_reason, deferred.defer_until) == (Deferred.QUIET_HOURS, T0.replace(hour=12, minute=0))


def test_plan_digests_everything_due_oldest_first_up_to_the_limit() -> None:
    due = [notice(episode=f"ep-{n:03}") for n in reversed(range(MAX_DIGEST + 3))]
    plan = plan_delivery(due, prefs(), last_sent_at=None, now=T0, min_interval=DAY)
    assert [n.episode_id for n in plan.send] == [f"ep-{n:03}" for n in range(MAX_DIGEST)]


def test_a_plan_that_defers_or_sends_still_suppresses_what_it_must():
    transient = notice(action=Action.WAIT, episode="ep-wait")
    wanted = notice()
    quiet = prefs(quietHours={"start": "00:00", "end": "23:59"})
    deferred = plan_delivery([transient, wanted], quiet, last_sent_at=None, now=T0, min_interval=DAY)
    assert (deferred.suppress, deferred.defer) == ([(transient, Suppressed.TRANSIENT)], [wanted])
    capped = plan_delivery([transient, wanted], prefs(), last_sent_at=T0, now=T0, min_interval=DAY)
    assert (capped.suppress, capped.defer) == ([(transient, Suppressed.TRANSIENT)], [wanted])
    sent = plan_delivery([transient, wanted], prefs(), last_sent_at=None, now=T0, min_interval=DAY)
    assert (sent.suppress, sent.send) == ([(transient, Suppressed.TRANSIENT)], [wanted])
