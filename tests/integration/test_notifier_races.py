"""Two notifier invocations at once, for one customer: exactly once and the daily cap hold under interleaving.

Lambda runs the rule's invocations and the sweep concurrently. Each test stops invocation A at a chosen point
(just before it claims, or in the middle of its send), runs invocation B to the end there, then lets A go on:
the orders in which the store's conditions, and nothing else, keep a customer from a second message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from connection_repair.adapters.dynamodb.notifications import DynamoDBNotificationStore, customer_key
from connection_repair.notify.compose import MessageComposer
from connection_repair.notify.outcome import Outcome
from connection_repair.notify.policy import Deferred, NotificationPolicy, Suppressed
from connection_repair.notify.ports import NotificationChannel
from connection_repair.notify.records import Message, MessageClaim
from connection_repair.notify.service import Notifier
from connection_repair.platform.clock import utc_stamp
from local.aws_resources import LocalResources
from tests.notifier_support import (
    RECONNECT_URL,
    SETTINGS_URL,
    T0,
    Clock,
    NotifierRig,
    attention,
    build_notifier,
    sent_emails,
)

AFTER_WINDOW = timedelta(minutes=6)


class ClaimsAfter(DynamoDBNotificationStore):
    """The real store, whose first ``claim`` lets another invocation run to the end first."""

    def __init__(self, store: DynamoDBNotificationStore, meanwhile: Callable[[], None]) -> None:
        super().__init__(store._client, store._table)
        self._meanwhile: Callable[[], None] | None = meanwhile

    def claim(self, external_customer_id: str, claims: Sequence[MessageClaim], **kwargs: Any) -> None:
        if self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            meanwhile()
        super().claim(external_customer_id, claims, **kwargs)


@dataclass
class SendsAfter:
    """A channel whose first send lets another invocation run to the end first (A holds its claim meanwhile)."""

    inner: NotificationChannel
    meanwhile: Callable[[], None] | None
    addresses: list[str] = field(default_factory=list)

    def send(self, address: str, message: Message, *, customer: str) -> str:
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return self.inner.send(address, message, customer=customer)


def invocation(
    rig: NotifierRig,
    now: datetime,
    *,
    store: DynamoDBNotificationStore | None = None,
    channels: dict[Any, NotificationChannel] | None = None,
    min_interval: timedelta = timedelta(hours=24),
) -> Notifier:
    """Another invocation of the notifier: the same table and providers, its own clock."""
    return Notifier(
        connections=rig.connections,
        preferences=rig.preferences_store,
        store=store or rig.store,
        channels=channels or rig.channels,
        composer=MessageComposer(RECONNECT_URL, settings_url=SETTINGS_URL, app_name="Budgetly"),
        policy=NotificationPolicy(min_interval=min_interval),
        clock=Clock(now),
    )


@pytest.fixture
def rig(aws: LocalResources) -> NotifierRig:
    rig = build_notifier(aws.table_name, Clock(T0))
    rig.preferences()
    return rig


def test_two_sweeps_racing_for_one_message_send_it_once(rig: NotifierRig) -> None:
    rig.notifier.on_needs_attention(attention(rig.connection()))
    now = T0 + AFTER_WINDOW
    outcomes: dict[str, Outcome] = {}

    def b_runs() -> None:
        outcomes["b"] = invocation(rig, now).sweep()

    # A read the due message and the customer's state, then B claims, sends and marks it before A claims.
    outcomes["a"] = invocation(rig, now, store=ClaimsAfter(rig.store, b_runs)).sweep()

    assert len(sent_emails()) == 1
    assert outcomes["b"].messages_sent == 1
    assert outcomes["a"].messages_sent == 0
    assert outcomes["a"].deferred[Deferred.DAILY_CAP] == 1
    notice = rig.episode()
    assert notice is not None
    assert (notice.next_message, notice.messages_sent) == (1, 1)


@pytest.mark.parametrize("sent_before", [None, T0 - timedelta(days=2)], ids=["first-message", "after-an-old-one"])
def test_two_invocations_with_different_messages_for_one_customer_send_one_per_day(
    rig: NotifierRig, sent_before: datetime | None
) -> None:
    if sent_before is not None:
        # The customer's last message went out two days ago: the cap allows one now, not two.
        boto3.client("dynamodb").put_item(
            TableName=rig.table_name,
            Item=customer_key("customer-1") | {"lastSentAt": {"S": utc_stamp(sent_before)}},
        )
    # Chase broke at T0 (due after the 5-minute window); Wells Fargo broke 10 minutes earlier.
    rig.notifier.on_needs_attention(attention(rig.connection("conn-1", episode_id="episode-1"), at=T0))
    wells = rig.connection(
        "conn-2", institution="Wells Fargo", episode_id="episode-2", since=T0 - timedelta(minutes=10)
    )
    outcomes: dict[str, Outcome] = {}

    def b_runs() -> None:
        # B started earlier (its clock says T0): only Wells Fargo is due for it, and it sends that.
        outcomes["b"] = invocation(rig, T0).on_needs_attention(attention(wells))

    # A, a sweep at T0 + 6 min, read only Chase as due (Wells Fargo was not registered yet), then B ran.
    outcomes["a"] = invocation(rig, T0 + AFTER_WINDOW, store=ClaimsAfter(rig.store, b_runs)).sweep()

    [email] = sent_emails()
    assert "Wells Fargo" in email.subject
    assert outcomes["b"].messages_sent == 1
    assert outcomes["a"].messages_sent == 0
    assert outcomes["a"].deferred[Deferred.DAILY_CAP] == 1
    chase = rig.episode(episode_id="episode-1")
    assert chase is not None
    assert (chase.next_message, chase.messages_sent) == (0, 0)  # still due, after the cap


def test_a_claim_being_sent_right_now_is_left_to_its_sender(rig: NotifierRig) -> None:
    # A deployment without a daily cap (NOTIFY_MIN_INTERVAL_HOURS=0): only the message's own claim stops B.
    rig.notifier.on_needs_attention(attention(rig.connection()))
    now = T0 + AFTER_WINDOW
    outcomes: dict[str, Outcome] = {}

    def b_runs() -> None:
        outcomes["b"] = invocation(rig, now + timedelta(seconds=1), min_interval=timedelta(0)).sweep()

    # A claimed the message and is sending it (its lease is live) when B's sweep finds the claim taken.
    channels = dict(rig.channels)
    email = next(iter(channels))
    channels[email] = SendsAfter(channels[email], b_runs)
    outcomes["a"] = invocation(rig, now, channels=channels, min_interval=timedelta(0)).sweep()

    assert len(sent_emails()) == 1
    assert outcomes["a"].messages_sent == 1
    assert outcomes["b"].messages_sent == 0
    assert outcomes["b"].suppressed[Suppressed.UNCERTAIN] == 0  # not mistaken for an abandoned claim
    claim = rig.store.get_claim("customer-1", "episode-1", 0)
    assert claim is not None
    assert claim.state == "SENT"
    notice = rig.episode()
    assert notice is not None
    assert (notice.next_message, notice.messages_sent) == (1, 1)
