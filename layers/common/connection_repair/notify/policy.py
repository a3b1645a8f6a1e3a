"""Who is told what, and when: suppression, the daily cap, quiet hours and the plan for one customer's due messages.

Per customer: everything due at once goes out as one message (a digest), at most one message per 24 h, never in the
customer's quiet hours, never after opt-out and never to a contact that is not on file.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from connection_repair.domain.status_policy import NEEDS_ATTENTION, Action
from connection_repair.notify.records import EpisodeNotice
from connection_repair.notify.schedule import ReminderSchedule, not_before
from connection_repair.preferences.model import Channel, NotificationPreferences

# Most connections one message lists; the rest stay due for the next message (a claim transaction holds 100 items).
MAX_DIGEST = 25
# What a message can be about: a repair (or renewal, new accounts) to do, or a new link to make.
TOLD: frozenset[Action] = NEEDS_ATTENTION | {Action.START_NEW_CONNECTION}


class Suppressed(StrEnum):
    """Why a due message was not sent (and will not be: the episode moves on to its next message)."""

    OPTED_OUT = "OPTED_OUT"
    NO_CONTACT = "NO_CONTACT"
    NOT_OPTED_IN = "NOT_OPTED_IN"  # NEW_ACCOUNTS_AVAILABLE without the customer's opt-in
    EPISODE_ENDED = "EPISODE_ENDED"  # repaired, deleted or replaced before the send
    TRANSIENT = "TRANSIENT"  # an event whose action is not customer-fixable (WAIT)
    NO_CUSTOMER = "NO_CUSTOMER"  # the connection is not attributed to a customer
    DUPLICATE = "DUPLICATE"  # the triggering event was seen before
    UNCERTAIN = "UNCERTAIN"  # abandoned mid-send or the provider's answer lost: maybe sent, never sent again
    CONTACT_UNUSABLE = "CONTACT_UNUSABLE"  # every contact on file was refused for good before
    REFUSED = "REFUSED"  # every channel refused this message for good (the contacts are now unusable)
    RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"  # refused for now, again and again: given up


class Deferred(StrEnum):
    QUIET_HOURS = "QUIET_HOURS"
    DAILY_CAP = "DAILY_CAP"
    TRANSIENT_OUTAGE = "TRANSIENT_OUTAGE"
    INCIDENT = "INCIDENT"  # a first message held while the institution has an incident
    SEND_RATE = "SEND_RATE"  # the deployment's send rate was used up for now
    THROTTLED = "THROTTLED"  # the provider throttled the send (nothing went out)


def next_allowed(now: datetime, preferences: NotificationPreferences) -> datetime:
    """``now``, or the end of the customer's quiet hours (in their time zone) when ``now`` falls inside them."""
    quiet = preferences.quiet_hours
    if quiet is None or quiet.start == quiet.end:
        return now
    zone = preferences.zone()
    local = now.astimezone(zone)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return now
    end = datetime.combine(local.date(), quiet.end, tzinfo=zone)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), quiet.end, tzinfo=zone)
    return end.astimezone(UTC)


def cap_until(last_sent_at: datetime | None, now: datetime, min_interval: timedelta) -> datetime | None:
    """When the customer may be sent the next message, if that is later than ``now``."""
    if last_sent_at is None:
        return None
    allowed = last_sent_at + min_interval
    return allowed if allowed > now else None


def usable_channels(
    preferences: NotificationPreferences | None,
    available: Collection[Channel] = tuple(Channel),
    unusable: Mapping[Channel, str] | None = None,
) -> list[Channel]:
    """The customer's chosen channels that have a contact on file (and that this deployment can send on), except
    a contact a provider refused for good."""
    if preferences is None:
        return []
    refused = unusable or {}
    return [
        channel
        for channel in preferences.channels
        if preferences.address(channel)
        and channel in available
        and refused.get(channel) != preferences.address(channel)
    ]


@dataclass(frozen=True)
class Plan:
    """What to do with a customer's due messages now."""

    send: list[EpisodeNotice] = field(default_factory=list)
    channels: list[Channel] = field(default_factory=list)
    suppress: list[tuple[EpisodeNotice, Suppressed]] = field(default_factory=list)
    defer: list[EpisodeNotice] = field(default_factory=list)
    defer_until: datetime | None = None
    defer_reason: Deferred | None = None


def plan_delivery(
    due: Sequence[EpisodeNotice],
    preferences: NotificationPreferences | None,
    *,
    last_sent_at: datetime | None,
    now: datetime,
    min_interval: timedelta,
    available: Collection[Channel] = tuple(Channel),
    unusable: Mapping[Channel, str] | None = None,
) -> Plan:
    """Decide, for one customer's due messages: suppress (for good), defer (all together) or send (as one message)."""
    channels = usable_channels(preferences, available, unusable)
    if preferences is not None and preferences.opted_out:
        return Plan(suppress=[(notice, Suppressed.OPTED_OUT) for notice in due])
    if preferences is None or not channels:
        reason = Suppressed.CONTACT_UNUSABLE if usable_channels(preferences, available) else Suppressed.NO_CONTACT
        return Plan(suppress=[(notice, reason) for notice in due])
    suppress: list[tuple[EpisodeNotice, Suppressed]] = []
    wanted: list[EpisodeNotice] = []
    for notice in due:
        if notice.action not in TOLD:
            suppress.append((notice, Suppressed.TRANSIENT))
        elif notice.action == Action.ADD_ACCOUNTS and not preferences.new_accounts_opt_in:
            suppress.append((notice, Suppressed.NOT_OPTED_IN))
        else:
            wanted.append(notice)
    if not wanted:
        return Plan(suppress=suppress)
    capped = cap_until(last_sent_at, now, min_interval)
    if capped is not None:
        return Plan(suppress=suppress, defer=wanted, defer_until=capped, defer_reason=Deferred.DAILY_CAP)
    allowed = next_allowed(now, preferences)
    if allowed > now:
        return Plan(suppress=suppress, defer=wanted, defer_until=allowed, defer_reason=Deferred.QUIET_HOURS)
    ordered = sorted(wanted, key=lambda notice: (notice.attention_since, notice.episode_id))
    return Plan(send=ordered[:MAX_DIGEST], channels=channels, suppress=suppress)


@dataclass(frozen=True)
class NotificationPolicy:
    schedule: ReminderSchedule = field(default_factory=ReminderSchedule)
    min_interval: timedelta = timedelta(hours=24)
    # Due messages one sweep reads at most; the rest wait for the next sweep.
    sweep_max_items: int = 5000

    def advanced(self, notice: EpisodeNotice, *, sent: bool, now: datetime) -> EpisodeNotice:
        """``notice`` moved on to its next message, the due one ``sent`` (or given up)."""
        number = notice.next_message + 1
        due = not_before(self.schedule.due_at(notice.attention_since, number, notice.action), now)
        if sent and due is not None:
            # Not due before the daily cap allows (the first message may have gone out late: quiet hours, cap).
            due = max(due, now + self.min_interval)
        return notice.model_copy(
            update={
                "next_message": number,
                "due_at": due,
                "messages_sent": notice.messages_sent + (1 if sent else 0),
                "reminders_sent": notice.reminders_sent + (1 if sent and notice.next_message > 0 else 0),
            }
        )


DEFAULT_POLICY = NotificationPolicy()
