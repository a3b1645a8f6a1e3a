"""Customer notifications: who to tell, when, and what — the use case behind the notifier function.

An episode (docs/decisions.md §8) gets at most one first message and ``len(reminder offsets)`` reminders (1 + 2 by
default, after 1 and 3 days). Messages are numbered per episode (0 = first, 1.. = reminders) and each (episode,
number) is claimed with a conditional write before it is sent, so duplicates and concurrent invocations send once.

Per customer: everything due at once goes out as one message (a digest), at most one message per 24 h, never in the
customer's quiet hours, never after opt-out and never to a contact that is not on file. Right before a send the
connection is read again: an episode that ended (repaired, deleted, replaced) is closed instead of announced.

The pure parts (schedule, quiet hours, cap, plan, composition) are functions; ``Notifier`` wires them to the ports.
"""

from __future__ import annotations

import html
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple
from urllib.parse import quote

from pydantic import ConfigDict

from connection_repair.models import CamelModel, ConnectionNeedsAttention, ConnectionRepaired
from connection_repair.notification_ports import (
    ClaimConflict,
    ConnectionReader,
    MessageClaim,
    NotificationChannel,
    NotificationStore,
)
from connection_repair.observability import logger
from connection_repair.preferences import Channel, NotificationPreferences
from connection_repair.status_policy import NEEDS_ATTENTION, Action

Clock = Callable[[], datetime]

# Most connections one message lists; the rest stay due for the next message (a claim transaction holds 100 items).
MAX_DIGEST = 25
# How long a send may take before its claim counts as abandoned (the process died): see docs/decisions.md §18.
CLAIM_LEASE = timedelta(minutes=15)
# A reminder that falls into a transient outage (action WAIT during an open episode) is tried again after this.
TRANSIENT_RETRY = timedelta(hours=1)
MAX_CLAIM_ATTEMPTS = 3


class Suppressed(StrEnum):
    """Why a due message was not sent (and will not be: the episode moves on to its next message)."""

    OPTED_OUT = "OPTED_OUT"
    NO_CONTACT = "NO_CONTACT"
    NOT_OPTED_IN = "NOT_OPTED_IN"  # NEW_ACCOUNTS_AVAILABLE without the customer's opt-in
    EPISODE_ENDED = "EPISODE_ENDED"  # repaired, deleted or replaced before the send
    TRANSIENT = "TRANSIENT"  # an event whose action is not customer-fixable (WAIT)
    NO_CUSTOMER = "NO_CUSTOMER"  # the connection is not attributed to a customer
    DUPLICATE = "DUPLICATE"  # the triggering event was seen before
    UNCERTAIN = "UNCERTAIN"  # a claim abandoned mid-send: maybe sent, never sent again


class Deferred(StrEnum):
    QUIET_HOURS = "QUIET_HOURS"
    DAILY_CAP = "DAILY_CAP"
    TRANSIENT_OUTAGE = "TRANSIENT_OUTAGE"


class DeliveryFailed(Exception):
    """Every channel failed for a message; its claims were released and it stays due."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(f"{outcome.failures} message(s) failed to send")
        self.outcome = outcome


# --- what we keep per episode ---------------------------------------------------------------------------------


class EpisodeNotice(CamelModel):
    """The notification state of one episode (its own item, never the Connection item)."""

    model_config = ConfigDict(frozen=True)

    episode_id: str
    connection_id: str
    external_customer_id: str
    institution_id: str | None = None
    institution_name: str | None = None
    action: Action
    status: str | None = None
    status_reason: str | None = None
    attention_since: datetime
    # The number of the next message (0 = the first, 1.. = reminders); due_at None: nothing more to send.
    next_message: int = 0
    due_at: datetime | None = None
    messages_sent: int = 0
    reminders_sent: int = 0
    closed: bool = False
    resolution: str | None = None


# Immutable values are NamedTuples, not frozen dataclasses: a third of the cost to define at cold start (§28).
class ReminderSchedule(NamedTuple):
    """When an episode's messages are due, counted from the start of the episode."""

    reminder_offsets: tuple[timedelta, ...] = (timedelta(days=1), timedelta(days=3))
    # The first message waits this long so that connections breaking together go out as one message.
    digest_window: timedelta = timedelta(minutes=5)

    def messages_for(self, action: Action) -> int:
        # NEW_ACCOUNTS_AVAILABLE is optional for the customer: one message at most, no reminders.
        return 1 if action == Action.ADD_ACCOUNTS else 1 + len(self.reminder_offsets)

    def due_at(self, attention_since: datetime, number: int, action: Action) -> datetime | None:
        if number >= self.messages_for(action):
            return None
        first = attention_since + self.digest_window
        # Reminders count from the first message: "after 1 day" is a day after the customer was told.
        return first if number == 0 else first + self.reminder_offsets[number - 1]


# --- pure policy ------------------------------------------------------------------------------------------------


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
    preferences: NotificationPreferences | None, available: Collection[Channel] = tuple(Channel)
) -> list[Channel]:
    """The customer's chosen channels that have a contact on file (and that this deployment can send on)."""
    if preferences is None:
        return []
    addresses = {Channel.EMAIL: preferences.email, Channel.SMS: preferences.phone}
    return [channel for channel in preferences.channels if addresses.get(channel) and channel in available]


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
) -> Plan:
    """Decide, for one customer's due messages: suppress (for good), defer (all together) or send (as one message)."""
    channels = usable_channels(preferences, available)
    if preferences is not None and preferences.opted_out:
        return Plan(suppress=[(notice, Suppressed.OPTED_OUT) for notice in due])
    if preferences is None or not channels:
        return Plan(suppress=[(notice, Suppressed.NO_CONTACT) for notice in due])
    suppress: list[tuple[EpisodeNotice, Suppressed]] = []
    wanted: list[EpisodeNotice] = []
    for notice in due:
        if notice.action not in NEEDS_ATTENTION:
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


# --- what the message says --------------------------------------------------------------------------------------


class Message(NamedTuple):
    subject: str
    text: str
    html: str
    sms: str


_HAPPENED: Mapping[tuple[str | None, str | None], str] = {
    ("ACTIVE", "ACCESS_EXPIRING_SOON"): "Your permission to share data from {bank} expires soon.",
    ("ACTIVE", "NEW_ACCOUNTS_AVAILABLE"): "{bank} has accounts you have not shared with us yet.",
    ("ACTIVE", "RECONNECT_AVAILABLE"): "{bank} has accounts you have not shared with us yet.",
    ("DEGRADED", "INSTITUTION_ACTION_REQUIRED"): (
        "{bank} needs you to do something on its website or app (for example accept new terms) "
        "before we can update your data."
    ),
    ("DEGRADED", "INTERACTIVE_REFRESH"): "{bank} asks you to confirm every update of your data yourself.",
    ("UNRECOVERABLE", None): "Updates from {bank} have kept failing, so your data is no longer up to date.",
}
_HAPPENED_DEFAULT = "We can no longer update your data from {bank}: the bank needs you to sign in again."

_TO_DO: Mapping[Action, str] = {
    Action.REPAIR: "Reconnect {bank} in the app; it takes about a minute.",
    Action.RENEW_ACCESS: "Renew access in the app to keep your {bank} data up to date.",
    Action.ADD_ACCOUNTS: "If you want them in the app too, add them in a minute.",
}

_SUBJECT: Mapping[Action, str] = {
    Action.REPAIR: "Reconnect your {bank} account",
    Action.RENEW_ACCESS: "Renew access to your {bank} account",
    Action.ADD_ACCOUNTS: "New accounts available at {bank}",
}
# When Meld has not named the bank yet ("Reconnect your your bank account" would not do).
_SUBJECT_UNNAMED: Mapping[Action, str] = {
    Action.REPAIR: "Reconnect your bank account",
    Action.RENEW_ACCESS: "Renew access to your bank account",
    Action.ADD_ACCOUNTS: "New accounts available at your bank",
}


# Characters in one SMS segment (GSM-7); longer texts go out, and are billed, as several.
SMS_SEGMENT = 160


def _bank(notice: EpisodeNotice) -> str:
    return notice.institution_name or "your bank"


def what_happened(notice: EpisodeNotice) -> str:
    template = _HAPPENED.get((notice.status, notice.status_reason)) or _HAPPENED.get((notice.status, None))
    return (template or _HAPPENED_DEFAULT).format(bank=_bank(notice))


def subject_for(notice: EpisodeNotice) -> str:
    if notice.institution_name is None:
        return _SUBJECT_UNNAMED.get(notice.action, _SUBJECT_UNNAMED[Action.REPAIR])
    return _SUBJECT.get(notice.action, _SUBJECT[Action.REPAIR]).format(bank=notice.institution_name)


def what_to_do(notice: EpisodeNotice) -> str:
    return _TO_DO.get(notice.action, _TO_DO[Action.REPAIR]).format(bank=_bank(notice))


class MessageComposer(NamedTuple):
    """Plain words, the institution's name and a link into the app; never a token, key or secret."""

    reconnect_url: str  # contains {connectionId}
    app_name: str = "your app"

    def link(self, notice: EpisodeNotice) -> str:
        return self.reconnect_url.replace("{connectionId}", quote(notice.connection_id, safe=""))

    def compose(self, notices: Sequence[EpisodeNotice]) -> Message:
        if not notices:
            raise ValueError("nothing to compose")
        reminder = all(notice.next_message > 0 for notice in notices)
        prefix = "Reminder: " if reminder else ""
        if len(notices) == 1:
            subject = prefix + subject_for(notices[0])
        else:
            subject = f"{prefix}{len(notices)} bank connections need your attention"
        text_parts = ["Hello,", ""]
        html_parts = ["<p>Hello,</p>"]
        for notice in notices:
            heading = _bank(notice)
            text_parts += [heading, what_happened(notice), what_to_do(notice), self.link(notice), ""]
            html_parts.append(
                f"<h3>{html.escape(heading)}</h3><p>{html.escape(what_happened(notice))}</p>"
                f'<p>{html.escape(what_to_do(notice))} <a href="{html.escape(self.link(notice), quote=True)}">'
                f"Reconnect {html.escape(heading)}</a></p>"
            )
        footer = (
            f"You receive this because you connected a bank to {self.app_name}. "
            "You can change or stop these messages in the app's notification settings."
        )
        text_parts.append(footer)
        html_parts.append(f"<p><small>{html.escape(footer)}</small></p>")
        body_html = f'<!doctype html><html><body style="font-family:sans-serif">{"".join(html_parts)}</body></html>'
        return Message(subject=subject, text="\n".join(text_parts), html=body_html, sms=self.sms(notices, subject))

    def sms(self, notices: Sequence[EpisodeNotice], subject: str) -> str:
        """The subject and the link (the email tells the whole story); a digest names as many banks as fit."""
        start, link = f"{self.app_name}: {subject}", self.link(notices[0])
        if len(notices) == 1:
            return f"{start}: {link}"
        banks = [_bank(notice) for notice in notices]
        for shown in range(len(banks), 0, -1):
            more = f" and {len(banks) - shown} more" if shown < len(banks) else ""
            text = f"{start} ({', '.join(banks[:shown])}{more}). {link}"
            if len(text) <= SMS_SEGMENT:
                break
        return text


# --- the use case -----------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What an invocation did; the handler turns it into metrics."""

    messages_sent: int = 0
    sent_by_channel: Counter[str] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)
    deferred: Counter[str] = field(default_factory=Counter)
    channel_failures: int = 0
    failures: int = 0
    # Episodes that ended: (resolution, seconds from episode start, reminders sent before the end).
    ended: list[tuple[str, float, int]] = field(default_factory=list)
    items_read: int = 0
    customers: int = 0

    def merge(self, other: Outcome) -> None:
        self.messages_sent += other.messages_sent
        self.sent_by_channel.update(other.sent_by_channel)
        self.suppressed.update(other.suppressed)
        self.deferred.update(other.deferred)
        self.channel_failures += other.channel_failures
        self.failures += other.failures
        self.ended.extend(other.ended)
        self.items_read += other.items_read
        self.customers += other.customers


class NotificationPolicy(NamedTuple):
    schedule: ReminderSchedule = ReminderSchedule()
    min_interval: timedelta = timedelta(hours=24)
    # Due messages one sweep reads at most; the rest wait for the next sweep.
    sweep_max_items: int = 5000


DEFAULT_POLICY = NotificationPolicy()


class Notifier:
    def __init__(
        self,
        *,
        connections: ConnectionReader,
        store: NotificationStore,
        channels: Mapping[Channel, NotificationChannel],
        composer: MessageComposer,
        policy: NotificationPolicy = DEFAULT_POLICY,
        clock: Clock = lambda: datetime.now(UTC),
        new_token: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._connections = connections
        self._store = store
        self._channels = channels
        self._composer = composer
        self._policy = policy
        self._clock = clock
        self._new_token = new_token

    # Entry points -------------------------------------------------------------------------------------------

    def on_needs_attention(self, event: ConnectionNeedsAttention) -> Outcome:
        """Register the episode's messages and send whatever of the customer's is due now (raise if that fails)."""
        outcome = Outcome()
        if event.action not in NEEDS_ATTENTION:
            outcome.suppressed[Suppressed.TRANSIENT] += 1
            return outcome
        customer = event.external_customer_id
        if not customer:
            outcome.suppressed[Suppressed.NO_CUSTOMER] += 1
            logger.info("Episode without a customer: nobody to tell", connection_id=event.connection_id)
            return outcome
        schedule = self._policy.schedule
        notice = EpisodeNotice(
            episode_id=event.episode_id,
            connection_id=event.connection_id,
            external_customer_id=customer,
            institution_id=event.institution_id,
            institution_name=event.institution_name,
            action=event.action,
            status=event.status,
            status_reason=event.status_reason,
            attention_since=event.attention_since,
            due_at=schedule.due_at(event.attention_since, 0, event.action),
        )
        if not self._store.register_episode(notice):
            outcome.suppressed[Suppressed.DUPLICATE] += 1
            logger.info("Episode already registered", episode_id=event.episode_id)
        now = self._clock()
        due = [n for n in self._store.customer_episodes(customer) if n.due_at is not None and n.due_at <= now]
        outcome.items_read += len(due)
        if due:
            outcome.merge(self._deliver(customer, due, now))
        if outcome.failures:
            raise DeliveryFailed(outcome)
        return outcome

    def on_repaired(self, event: ConnectionRepaired) -> Outcome:
        """Close the episode (nothing more is sent for it) and record how long it lasted and how many reminders."""
        outcome = Outcome()
        customer = event.external_customer_id
        if not customer:
            return outcome
        reminders = self._store.close_episode(
            customer,
            event.episode_id,
            resolution=event.resolution,
            now=self._clock(),
            connection_id=event.connection_id,
        )
        if reminders is None:
            outcome.suppressed[Suppressed.DUPLICATE] += 1
            return outcome
        seconds = max(0.0, (event.event_time - event.attention_since).total_seconds())
        outcome.ended.append((event.resolution, seconds, reminders))
        return outcome

    def sweep(self, *, max_items: int | None = None) -> Outcome:
        """Send everything due (the sparse index holds only due-or-future messages; we read only the due ones)."""
        now = self._clock()
        outcome = Outcome()
        due = self._store.due_episodes(now, limit=max_items or self._policy.sweep_max_items)
        outcome.items_read += len(due)
        by_customer: dict[str, list[EpisodeNotice]] = {}
        for notice in due:
            by_customer.setdefault(notice.external_customer_id, []).append(notice)
        for customer, notices in by_customer.items():
            try:
                outcome.merge(self._deliver(customer, notices, now))
            except Exception:
                # One customer's problem (a store error, a poison item) must not stop everybody else's reminders.
                logger.exception("Delivery failed", external_customer_id=customer)
                outcome.failures += 1
                self._retry_later(notices, now)
        return outcome

    def _retry_later(self, notices: Sequence[EpisodeNotice], now: datetime) -> None:
        """Keep failed messages due, re-keyed to now: in today's due partition, so no later sweep leaves them behind."""
        for notice in notices:
            try:
                self._store.defer(notice, now)
            except Exception:
                logger.exception("Could not re-key a failed message", episode_id=notice.episode_id)

    # Delivery ---------------------------------------------------------------------------------------------------

    def _deliver(self, customer: str, due: list[EpisodeNotice], now: datetime) -> Outcome:
        outcome = Outcome(customers=1)
        preferences = self._connections.get_preferences(customer)
        state = self._store.get_customer_state(customer)
        plan = plan_delivery(
            due,
            preferences,
            last_sent_at=state.last_sent_at,
            now=now,
            min_interval=self._policy.min_interval,
            available=self._channels.keys(),
        )
        for notice, reason in plan.suppress:
            self._skip(notice, reason, now, outcome)
        if plan.defer_until is not None and plan.defer_reason is not None:
            for notice in plan.defer:
                self._store.defer(notice, plan.defer_until)
                outcome.deferred[plan.defer_reason] += 1
        if plan.send and preferences is not None:
            self._send(customer, plan, preferences, previous_sent=state.last_sent_at, now=now, outcome=outcome)
        return outcome

    def _skip(self, notice: EpisodeNotice, reason: Suppressed, now: datetime, outcome: Outcome) -> None:
        """The due message will never be sent; move the episode on to its next message."""
        outcome.suppressed[reason] += 1
        self._store.advance(notice, self._advanced(notice, sent=False, now=now), [], now, "SENT")

    def _advanced(self, notice: EpisodeNotice, *, sent: bool, now: datetime) -> EpisodeNotice:
        number = notice.next_message + 1
        due = self._policy.schedule.due_at(notice.attention_since, number, notice.action)
        if sent and due is not None:
            # Not due before the daily cap allows (the first message may have gone out late: quiet hours, cap).
            due = max(due, now + self._policy.min_interval)
        return notice.model_copy(
            update={
                "next_message": number,
                "due_at": due,
                "messages_sent": notice.messages_sent + (1 if sent else 0),
                "reminders_sent": notice.reminders_sent + (1 if sent and notice.next_message > 0 else 0),
            }
        )

    def _claim(
        self,
        customer: str,
        notices: list[EpisodeNotice],
        *,
        previous_sent: datetime | None,
        now: datetime,
        token: str,
        outcome: Outcome,
    ) -> list[EpisodeNotice] | None:
        """Claim the customer's send slot and each (episode, number); None when the slot is taken meanwhile."""
        remaining = list(notices)
        for _ in range(MAX_CLAIM_ATTEMPTS):
            if not remaining:
                return []
            try:
                self._store.claim(
                    customer,
                    [MessageClaim(n.episode_id, n.next_message) for n in remaining],
                    token=token,
                    now=now,
                    previous_sent_at=previous_sent,
                    lease_until=now + CLAIM_LEASE,
                )
                return remaining
            except ClaimConflict as conflict:
                if conflict.customer_slot_taken:
                    return None
                taken = set(conflict.taken)
                for notice in remaining:
                    if (notice.episode_id, notice.next_message) in taken:
                        self._resolve_taken(notice, now, outcome)
                remaining = [n for n in remaining if (n.episode_id, n.next_message) not in taken]
        return None

    def _resolve_taken(self, notice: EpisodeNotice, now: datetime, outcome: Outcome) -> None:
        """Someone claimed this message before. Abandoned mid-send: count it as (maybe) sent and move on."""
        record = self._store.get_claim(notice.external_customer_id, notice.episode_id, notice.next_message)
        if record is None or record.state != "CLAIMED" or record.lease_until is None or record.lease_until > now:
            return  # sent (the episode is advanced by its sender) or being sent right now
        outcome.suppressed[Suppressed.UNCERTAIN] += 1
        logger.warning(
            "Message claim abandoned mid-send: not sending it again",
            episode_id=notice.episode_id,
            message_number=notice.next_message,
        )
        claim = MessageClaim(notice.episode_id, notice.next_message)
        self._store.advance(notice, self._advanced(notice, sent=True, now=now), [claim], now, "UNCERTAIN")

    def _send(
        self,
        customer: str,
        plan: Plan,
        preferences: NotificationPreferences,
        *,
        previous_sent: datetime | None,
        now: datetime,
        outcome: Outcome,
    ) -> None:
        token = self._new_token()
        claimed = self._claim(customer, plan.send, previous_sent=previous_sent, now=now, token=token, outcome=outcome)
        if claimed is None:
            # Another invocation sent this customer a message meanwhile: the cap applies at the next sweep.
            outcome.deferred[Deferred.DAILY_CAP] += len(plan.send)
            return
        if not claimed:
            return

        current = self._recheck(customer, claimed, now, outcome)
        if not current:
            self._store.release_slot(customer, token, previous_sent)
            return

        delivered = self._send_on_channels(
            customer, self._composer.compose(current), plan.channels, preferences, outcome
        )

        if not delivered:
            # Nothing went out: release everything, so the message is retried (by the event's retry or the sweep).
            self._store.release_claims(customer, [MessageClaim(n.episode_id, n.next_message) for n in current])
            self._store.release_slot(customer, token, previous_sent)
            self._retry_later(current, now)
            outcome.failures += 1
            return
        # The mark. A process dying between the send above and these writes leaves the claims CLAIMED: after the
        # lease they count as sent and are never sent again (docs/decisions.md §18).
        for notice in current:
            claim = MessageClaim(notice.episode_id, notice.next_message)
            self._store.advance(notice, self._advanced(notice, sent=True, now=now), [claim], now, "SENT")
        outcome.messages_sent += 1
        for channel in delivered:
            outcome.sent_by_channel[channel.value] += 1
        logger.info(
            "Notification sent",
            external_customer_id=customer,
            episodes=[n.episode_id for n in current],
            messages=[n.next_message for n in current],
            channels=[c.value for c in delivered],
        )

    def _recheck(
        self, customer: str, claimed: list[EpisodeNotice], now: datetime, outcome: Outcome
    ) -> list[EpisodeNotice]:
        """Right before the send: which claimed messages are still about the connection's current episode."""
        current: list[EpisodeNotice] = []
        for notice in claimed:
            claim = MessageClaim(notice.episode_id, notice.next_message)
            connection = self._connections.get_connection(notice.connection_id)
            if connection is None or connection.episode_id != notice.episode_id:
                # Repaired, deleted or replaced: nothing more for this episode (on_repaired records how it ended).
                outcome.suppressed[Suppressed.EPISODE_ENDED] += 1
                self._store.advance(notice, notice.model_copy(update={"due_at": None}), [claim], now, "CANCELLED")
            elif connection.action == Action.WAIT:
                # A transient outage inside the episode: asking for a repair now would likely fail. Later.
                self._store.release_claims(customer, [claim])
                self._store.defer(notice, now + TRANSIENT_RETRY)
                outcome.deferred[Deferred.TRANSIENT_OUTAGE] += 1
            else:
                # Same episode: say what is true now (a DEGRADED episode may have become RECONNECT_REQUIRED).
                current.append(
                    notice.model_copy(
                        update={
                            "status": connection.status,
                            "status_reason": connection.status_reason,
                            "institution_name": connection.institution_name or notice.institution_name,
                        }
                    )
                )
        return current

    def _send_on_channels(
        self,
        customer: str,
        message: Message,
        channels: Sequence[Channel],
        preferences: NotificationPreferences,
        outcome: Outcome,
    ) -> list[Channel]:
        delivered: list[Channel] = []
        for channel in channels:
            adapter = self._channels.get(channel)
            address = _address(preferences, channel)
            if adapter is None or address is None:
                continue
            try:
                adapter.send(address, message)
                delivered.append(channel)
            except Exception:
                outcome.channel_failures += 1
                logger.exception("Channel send failed", channel=channel.value, external_customer_id=customer)
        return delivered


def _address(preferences: NotificationPreferences | None, channel: Channel) -> str | None:
    if preferences is None:
        return None
    return preferences.email if channel == Channel.EMAIL else preferences.phone
