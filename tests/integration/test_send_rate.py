"""The send rate: never more sends a second on a channel than configured, summed over every notifier invocation (a
counter in the table), and a provider's throttling deferred, not counted as a failed delivery (moto)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import boto3

from connection_repair.adapters.dynamodb.send_rate import DynamoDBSendCounter
from connection_repair.notify.policy import Deferred
from connection_repair.notify.ports import NotificationChannel, SendRefused
from connection_repair.notify.records import Message
from connection_repair.preferences.model import Channel
from local.aws_resources import LocalResources
from tests.notifier_support import T0, Clock, NotifierRig, attention, build_notifier, sent_emails

DUE = T0 + timedelta(minutes=6)


@dataclass
class Recorded:
    """The email channel, noting the (test) time of every send it passes on."""

    inner: NotificationChannel
    clock: Clock
    at: list[datetime] = field(default_factory=list)

    def send(self, address: str, message: Message, *, customer: str) -> str:
        message_id = self.inner.send(address, message, customer=customer)
        self.at.append(self.clock.now)
        return message_id


@dataclass
class ThrottledOnce:
    inner: NotificationChannel
    calls: int = 0

    def send(self, address: str, message: Message, *, customer: str) -> str:
        self.calls += 1
        if self.calls == 1:
            raise SendRefused("TooManyRequestsException", permanent=False, throttled=True)
        return self.inner.send(address, message, customer=customer)


def broken_customers(rig: NotifierRig, count: int) -> None:
    for number in range(1, count + 1):
        customer = f"customer-{number}"
        rig.preferences(customer, email=f"c{number}@example.com")
        broken = rig.connection(f"conn-{number}", customer=customer, episode_id=f"episode-{number}", since=T0)
        rig.notifier.on_needs_attention(attention(broken))


def recording_rig(aws: LocalResources, clock: Clock, rate: int) -> tuple[NotifierRig, Recorded]:
    recorded: list[Recorded] = []

    def wrap(channel: Any) -> Any:
        recorded.append(Recorded(channel, clock))
        return recorded[-1]

    return build_notifier(aws.table_name, clock, wrap=wrap, send_rate=rate), recorded[0]


def test_no_second_carries_more_sends_than_the_rate(aws: LocalResources) -> None:
    clock = Clock(T0)
    rig, email = recording_rig(aws, clock, rate=2)
    broken_customers(rig, 7)
    clock.at(DUE)
    outcome = rig.notifier.sweep()
    assert outcome.messages_sent == 7
    per_second = Counter(moment.replace(microsecond=0) for moment in email.at)
    assert max(per_second.values()) == 2
    assert len(per_second) == 4  # 2 + 2 + 2 + 1: the sweep waited for each next second


def test_the_rate_is_shared_with_every_other_invocation(aws: LocalResources) -> None:
    clock = Clock(T0)
    rig, email = recording_rig(aws, clock, rate=2)
    broken_customers(rig, 1)
    clock.at(DUE)
    # Another invocation took this second's two sends
    other = DynamoDBSendCounter(boto3.client("dynamodb"), aws.table_name)
    second = DUE.replace(microsecond=0)
    assert other.take(Channel.EMAIL, second, 2)
    assert other.take(Channel.EMAIL, second, 2)
    assert not other.take(Channel.EMAIL, second, 2)
    assert other.take(Channel.SMS, second, 2)  # each channel has its own rate
    counted = boto3.client("dynamodb").get_item(
        TableName=aws.table_name,
        Key={"pk": {"S": "SEND_RATE#EMAIL"}, "sk": {"S": second.strftime("%Y-%m-%dT%H:%M:%SZ")}},
    )["Item"]
    assert counted["sends"] == {"N": "2"}
    assert int(counted["expiresAt"]["N"]) == int((second + timedelta(hours=1)).timestamp())

    assert rig.notifier.sweep().messages_sent == 1
    assert [moment.replace(microsecond=0) for moment in email.at] == [second + timedelta(seconds=1)]


def test_a_send_that_finds_no_room_in_the_rate_is_deferred_not_failed(aws: LocalResources) -> None:
    clock = Clock(T0)
    rig = build_notifier(aws.table_name, clock, send_rate=1)
    broken_customers(rig, 1)
    clock.at(DUE)
    counter = DynamoDBSendCounter(boto3.client("dynamodb"), aws.table_name)
    for offset in range(10):  # others use up the next ten seconds
        assert counter.take(Channel.EMAIL, DUE.replace(microsecond=0) + timedelta(seconds=offset), 1)

    outcome = rig.notifier.sweep()
    assert outcome.deferred[Deferred.SEND_RATE] == 1
    assert outcome.failures == 0
    assert sent_emails() == []
    assert rig.episode_notes("customer-1", "episode-1") == {"deferred#0": "SEND_RATE"}
    episode = rig.episode("customer-1", "episode-1")
    assert episode is not None
    assert episode.next_message == 0
    assert episode.delivery_attempts == 0
    assert episode.due_at is not None
    assert episode.due_at > clock.now

    clock.at(clock.now + timedelta(minutes=1))
    assert rig.notifier.sweep().messages_sent == 1


def test_a_throttled_send_is_tried_again_shortly_and_is_no_failed_delivery(aws: LocalResources) -> None:
    clock = Clock(T0)
    rig = build_notifier(aws.table_name, clock, wrap=ThrottledOnce)
    broken_customers(rig, 1)
    clock.at(DUE)

    outcome = rig.notifier.sweep()
    assert outcome.deferred[Deferred.THROTTLED] == 1
    assert outcome.failures == 0
    assert outcome.channel_failures == 1
    assert rig.episode_notes("customer-1", "episode-1") == {"deferred#0": "THROTTLED"}
    episode = rig.episode("customer-1", "episode-1")
    assert episode is not None
    assert episode.delivery_attempts == 0
    assert rig.store.get_claim("customer-1", "episode-1", 0) is None  # released
    assert rig.store.get_customer_state("customer-1").last_sent_at is None  # the slot too

    clock.at(clock.now + timedelta(minutes=1))
    assert rig.notifier.sweep().messages_sent == 1
    assert len(sent_emails()) == 1
