"""Customer notifications: who to tell, when, and what — the use case behind the notifier function.

An episode (docs/decisions.md §8) gets at most one first message and ``len(reminder offsets)`` reminders (1 + 2 by
default, after 1 and 3 days). Messages are numbered per episode (0 = first, 1.. = reminders) and each (episode,
number) is claimed with a conditional write before it is sent, so duplicates and concurrent invocations send once.

Right before a send the connection is read again: an episode that ended (repaired, deleted, replaced) is closed
instead of announced. While an institution has an incident, the first messages of its broken connections are held
(``notify.incidents``); every send stays within the deployment's send rate (``notify.pacing``). The pure parts
(schedule, policy, composition, delivery) live beside it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from connection_repair.domain.bus_events import ConnectionAttentionEnded, ConnectionNeedsAttention
from connection_repair.domain.incident import InstitutionIncident
from connection_repair.domain.status_policy import NEEDS_ATTENTION
from connection_repair.notify.claims import claim_messages, recheck_claimed
from connection_repair.notify.compose import MessageComposer
from connection_repair.notify.delivery import Delivery, deliver
from connection_repair.notify.incidents import IncidentWatch, hold_for_incidents, release_held
from connection_repair.notify.notices import LINK_AGAIN, episode_notice, link_again_notice
from connection_repair.notify.outcome import DeliveryFailed, Outcome
from connection_repair.notify.pacing import UNPACED, SendPacer
from connection_repair.notify.policy import (
    DEFAULT_POLICY,
    Deferred,
    NotificationPolicy,
    Plan,
    Suppressed,
    plan_delivery,
)
from connection_repair.notify.ports import ConnectionReader, NotificationChannel, NotificationStore
from connection_repair.notify.records import EpisodeNotice, MessageClaim
from connection_repair.notify.schedule import MAX_DELIVERY_ATTEMPTS, not_before, retry_delay
from connection_repair.platform.clock import Clock
from connection_repair.platform.observability import logger
from connection_repair.preferences.model import Channel, NotificationPreferences
from connection_repair.preferences.ports import PreferencesStore

# A message the provider throttled, or that found the send rate used up, is tried again after this.
RATE_RETRY = timedelta(seconds=30)
# The time a sweep keeps in hand: one customer's delivery (reads, a claim, the sends, the marks) fits well inside it.
SWEEP_RESERVE = timedelta(seconds=20)


class Notifier:
    def __init__(
        self,
        *,
        connections: ConnectionReader,
        preferences: PreferencesStore,
        store: NotificationStore,
        channels: Mapping[Channel, NotificationChannel],
        composer: MessageComposer,
        policy: NotificationPolicy = DEFAULT_POLICY,
        incidents: IncidentWatch | None = None,
        pacer: SendPacer = UNPACED,
        clock: Clock = lambda: datetime.now(UTC),
        new_token: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._incidents = incidents
        self._rate = pacer
        self._connections = connections
        self._preferences = preferences
        self._store = store
        self._channels = channels
        self._composer = composer
        self._policy = policy
        self._clock = clock
        self._new_token = new_token

    def on_needs_attention(self, event: ConnectionNeedsAttention) -> Outcome:
        """Register the episode's messages and send whatever of the customer's is due now (raise if that fails)."""
        outcome = Outcome()
        if event.action not in NEEDS_ATTENTION:
            outcome.suppressed[Suppressed.TRANSIENT] += 1
            return outcome
        customer = event.external_customer_id
        if not customer:
            self._count_break(event, outcome)
            outcome.suppressed[Suppressed.NO_CUSTOMER] += 1
            logger.info("Episode without a customer: nobody to tell", connection_id=event.connection_id)
            return outcome
        if self._register(episode_notice(event, customer), outcome):
            self._count_break(event, outcome)
        self._send_due(customer, outcome)
        if outcome.failures:
            raise DeliveryFailed(outcome)
        return outcome

    def _count_break(self, event: ConnectionNeedsAttention, outcome: Outcome) -> None:
        if self._incidents is not None and event.institution_id:
            started = self._incidents.on_break(
                event.institution_id, event.institution_name, event.attention_since, event.status_reason
            )
            if started is not None:
                outcome.incidents["STARTED"] += 1

    def _register(self, notice: EpisodeNotice, outcome: Outcome) -> bool:
        """Register ``notice``'s messages; False when it was registered before (a duplicate event)."""
        first = self._policy.schedule.due_at(notice.attention_since, 0, notice.action)
        if self._store.register_episode(notice.model_copy(update={"due_at": not_before(first, self._clock())})):
            return True
        outcome.suppressed[Suppressed.DUPLICATE] += 1
        logger.info("Episode already registered", episode_id=notice.episode_id)
        return False

    def _send_due(self, customer: str, outcome: Outcome) -> None:
        """Send whatever of the customer's messages is due now."""
        now = self._clock()
        due = [n for n in self._store.customer_episodes(customer) if n.due_at is not None and n.due_at <= now]
        outcome.items_read += len(due)
        if due:
            outcome.merge(self._deliver(customer, due, now, {}))

    def on_attention_ended(self, event: ConnectionAttentionEnded) -> Outcome:
        """Close the episode (nothing more is sent for it) and record how long it lasted and how many reminders."""
        outcome = Outcome()
        customer = event.external_customer_id
        if not customer:
            self._count_repair(event, outcome)
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
        self._count_repair(event, outcome)
        seconds = max(0.0, (event.event_time - event.attention_since).total_seconds())
        outcome.ended.append((event.resolution, seconds, reminders))
        if event.resolution in LINK_AGAIN:
            # Only a new link helps now: one message says so (under the same opt-out, quiet hours and cap).
            self._register(link_again_notice(event, customer), outcome)
            self._send_due(customer, outcome)
        return outcome

    def _count_repair(self, event: ConnectionAttentionEnded, outcome: Outcome) -> None:
        # Repairs that kept failing leave the connection broken: it still counts in its institution's incident.
        if self._incidents is not None and event.institution_id and event.resolution != "REPAIR_FAILED":
            ended = self._incidents.on_repair(event.institution_id, event.attention_since)
            if ended is not None:
                outcome.incidents["ENDED"] += 1
                release_held(self._store, ended, self._clock())

    def sweep(self, *, max_items: int | None = None, remaining_seconds: Callable[[], float] | None = None) -> Outcome:
        """Send everything due (read from the sparse due index). No customer's delivery starts with less than
        ``SWEEP_RESERVE`` of ``remaining_seconds`` left (a timeout mid-send loses the message); the rest stays due."""
        now = self._clock()
        outcome = Outcome()
        due = self._store.due_episodes(now, limit=max_items or self._policy.sweep_max_items)
        outcome.items_read += len(due)
        outcome.oldest_due_seconds = max([0.0, *((now - n.due_at).total_seconds() for n in due if n.due_at)])
        by_customer: dict[str, list[EpisodeNotice]] = {}
        for notice in due:
            by_customer.setdefault(notice.external_customer_id, []).append(notice)
        incidents: dict[str, InstitutionIncident | None] = {}
        for index, (customer, notices) in enumerate(by_customer.items()):
            if remaining_seconds is not None and remaining_seconds() < SWEEP_RESERVE.total_seconds():
                outcome.customers_left = len(by_customer) - index
                logger.warning("Sweep stopped: its time is running out", customers_left=outcome.customers_left)
                break
            try:
                outcome.merge(self._deliver(customer, notices, now, incidents))
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

    def _deliver(
        self,
        customer: str,
        due: list[EpisodeNotice],
        now: datetime,
        incidents: dict[str, InstitutionIncident | None],
    ) -> Outcome:
        outcome = Outcome()
        if self._incidents is not None:
            due = hold_for_incidents(self._incidents, self._store, due, now=now, seen=incidents, outcome=outcome)
        if not due:
            return outcome
        preferences = self._preferences.get_preferences(customer)
        state = self._store.get_customer_state(customer)
        plan = plan_delivery(
            due,
            preferences,
            last_sent_at=state.last_sent_at,
            now=now,
            min_interval=self._policy.min_interval,
            available=self._channels.keys(),
            unusable=state.unusable,
        )
        for notice, reason in plan.suppress:
            self._skip(notice, reason, now, outcome)
        if plan.defer_until is not None and plan.defer_reason is not None:
            for notice in plan.defer:
                self._store.defer(notice, plan.defer_until, reason=plan.defer_reason, now=now)
                outcome.deferred[plan.defer_reason] += 1
        if plan.send and preferences is not None:
            self._send(customer, plan, preferences, previous_sent=state.last_sent_at, now=now, outcome=outcome)
        return outcome

    def _skip(self, notice: EpisodeNotice, reason: Suppressed, now: datetime, outcome: Outcome) -> None:
        """The due message will never be sent; move the episode on to its next message."""
        outcome.suppressed[reason] += 1
        updated = self._policy.advanced(notice, sent=False, now=now)
        self._store.advance(notice, updated, [], now, "SENT", skipped=reason)

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
        if not self._rate.take(plan.channels):
            for notice in plan.send:
                self._store.defer(notice, now + RATE_RETRY, reason=Deferred.SEND_RATE, now=now)
            outcome.deferred[Deferred.SEND_RATE] += len(plan.send)
            return
        claimed = claim_messages(
            self._store,
            self._policy,
            customer,
            plan.send,
            previous_sent=previous_sent,
            now=now,
            token=token,
            outcome=outcome,
        )
        if claimed is None:
            # Another invocation sent this customer a message meanwhile: the cap applies at the next sweep.
            outcome.deferred[Deferred.DAILY_CAP] += len(plan.send)
            return
        if not claimed:
            return

        current = recheck_claimed(self._connections, self._store, customer, claimed, now=now, outcome=outcome)
        if not current:
            self._store.release_slot(customer, token, previous_sent)
            return

        message = self._composer.compose(current, preferences)
        outcome.template_fallbacks += message.template_fallback
        delivery = deliver(message, plan.channels, self._channels, preferences, customer=customer)
        outcome.channel_failures += len(delivery.refused) + len(delivery.unknown)
        for refusal in delivery.unusable:
            self._store.mark_unusable(customer, refusal.channel, refusal.address, reason=refusal.reason, now=now)
        claims = [MessageClaim(n.episode_id, n.next_message) for n in current]
        if not delivery.maybe_sent:
            # Nothing went out: the slot is free again; the message is tried later or, refused for good, given up.
            self._store.release_slot(customer, token, previous_sent)
            self._not_sent(customer, current, claims, delivery, now=now, outcome=outcome)
            return
        # The mark. A process dying between the send above and these writes leaves the claims CLAIMED: after the
        # lease they count as sent and are never sent again (docs/decisions.md §18). So does an unknown outcome.
        state = "SENT" if delivery.delivered else "UNCERTAIN"
        # The providers' ids of what went out, on each claim: `make inspect` shows them.
        sent_ids = {channel.value: message_id for channel, message_id in delivery.delivered.items() if message_id}
        for notice, claim in zip(current, claims, strict=True):
            updated = self._policy.advanced(notice, sent=True, now=now)
            self._store.advance(notice, updated, [claim], now, state, message_ids=sent_ids)
        if not delivery.delivered:
            outcome.suppressed[Suppressed.UNCERTAIN] += len(current)
            return
        outcome.messages_sent += 1
        for channel in delivery.delivered:
            outcome.sent_by_channel[channel.value] += 1
        logger.info(
            "Notification sent",
            external_customer_id=customer,
            episodes=[n.episode_id for n in current],
            messages=[n.next_message for n in current],
            channels=[c.value for c in delivery.delivered],
            message_ids={channel.value: message_id for channel, message_id in delivery.delivered.items()},
        )

    def _not_sent(
        self,
        customer: str,
        current: list[EpisodeNotice],
        claims: list[MessageClaim],
        delivery: Delivery,
        *,
        now: datetime,
        outcome: Outcome,
    ) -> None:
        if delivery.throttled:
            # The provider's quota, not the message: tried again shortly, not counted as a failed delivery.
            self._store.release_claims(customer, claims)
            for notice in current:
                self._store.defer(notice, now + RATE_RETRY, reason=Deferred.THROTTLED, now=now)
            outcome.deferred[Deferred.THROTTLED] += len(current)
        elif delivery.retryable:
            self._store.release_claims(customer, claims)
            self._back_off(current, now, outcome)
        else:
            for notice, claim in zip(current, claims, strict=True):
                self._store.advance(notice, self._policy.advanced(notice, sent=False, now=now), [claim], now, "REFUSED")
            outcome.suppressed[Suppressed.REFUSED] += len(current)

    def _back_off(self, notices: Sequence[EpisodeNotice], now: datetime, outcome: Outcome) -> None:
        """Every channel refused for now: try again later, less and less often, and give up in the end (counted)."""
        outcome.failures += 1
        for notice in notices:
            attempts = notice.delivery_attempts + 1
            if attempts >= MAX_DELIVERY_ATTEMPTS:
                outcome.suppressed[Suppressed.RETRIES_EXHAUSTED] += 1
                updated = self._policy.advanced(notice, sent=False, now=now)
                self._store.advance(notice, updated, [], now, "SENT", skipped=Suppressed.RETRIES_EXHAUSTED)
            else:
                self._store.back_off(notice, now + retry_delay(attempts))
