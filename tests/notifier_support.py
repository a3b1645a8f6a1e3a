"""Helpers for the notifier's tests: a settable clock, a notifier on moto, seeding, and what SES/SNS received."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import boto3
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends

from connection_repair.adapters.dynamodb.connections import DynamoDBConnectionReader, connection_item
from connection_repair.adapters.dynamodb.incidents import DynamoDBIncidentStore
from connection_repair.adapters.dynamodb.keys import from_item
from connection_repair.adapters.dynamodb.notification_items import episode_key
from connection_repair.adapters.dynamodb.notifications import DynamoDBNotificationStore
from connection_repair.adapters.dynamodb.preferences import DynamoDBPreferencesStore
from connection_repair.adapters.dynamodb.send_rate import DynamoDBSendCounter
from connection_repair.adapters.eventbridge import EventBridgePublisher
from connection_repair.adapters.ses import SesEmailChannel
from connection_repair.adapters.sns import SnsSmsChannel
from connection_repair.domain.bus_events import ConnectionAttentionEnded, ConnectionNeedsAttention
from connection_repair.domain.connection import Connection
from connection_repair.domain.incident import IncidentPolicy
from connection_repair.domain.status_policy import Action
from connection_repair.notify.compose import MessageComposer
from connection_repair.notify.incidents import IncidentWatch
from connection_repair.notify.pacing import SendPacer
from connection_repair.notify.policy import NotificationPolicy
from connection_repair.notify.ports import NotificationChannel, SendRefused
from connection_repair.notify.records import EpisodeNotice, Message
from connection_repair.notify.schedule import ReminderSchedule
from connection_repair.notify.service import Notifier
from connection_repair.preferences.model import Channel, QuietHours, StoredPreferences

SENDER = "notifications@app.example.com"
RECONNECT_URL = "https://app.example.com/connections/{connectionId}/reconnect"
SETTINGS_URL = "https://app.example.com/settings/notifications"
REGION = "us-east-1"
T0 = datetime(2026, 11, 25, 11, 30, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, moment: datetime) -> None:
        self.now = moment

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class FlakyChannel:
    """A channel whose provider refuses the first ``failures`` sends for now (unreachable), then passes them on."""

    inner: NotificationChannel
    failures: int = 1
    calls: int = 0

    def send(self, address: str, message: Message, *, customer: str) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise SendRefused("Unreachable", permanent=False)
        return self.inner.send(address, message, customer=customer)


@dataclass
class NotifierRig:
    notifier: Notifier
    store: DynamoDBNotificationStore
    connections: DynamoDBConnectionReader
    preferences_store: DynamoDBPreferencesStore
    clock: Clock
    table_name: str
    channels: dict[Channel, NotificationChannel] = field(default_factory=dict)

    def connection(
        self,
        connection_id: str = "conn-1",
        *,
        customer: str = "customer-1",
        institution: str = "Chase",
        episode_id: str | None = "episode-1",
        status: str = "RECONNECT_REQUIRED",
        reason: str | None = "LOGIN_REQUIRED",
        action: Action = Action.REPAIR,
        since: datetime | None = None,
    ) -> Connection:
        """Store the connection's current state (what the webhook writer would have written)."""
        open_episode = episode_id is not None
        connection = Connection(
            connection_id=connection_id,
            external_customer_id=customer,
            institution_id=f"inst-{institution.lower()}",
            institution_name=institution,
            status=status,
            status_reason=reason,
            action=action,
            episode_id=episode_id,
            episode_action=action if open_episode else None,
            attention_since=(since or self.clock.now) if open_episode else None,
            version=1,
        )
        boto3.client("dynamodb").put_item(TableName=self.table_name, Item=connection_item(connection))
        return connection

    def repair(self, connection_id: str = "conn-1", **kwargs: Any) -> Connection:
        return self.connection(
            connection_id, episode_id=None, status="ACTIVE", reason=None, action=Action.NONE, **kwargs
        )

    def preferences(
        self,
        customer: str = "customer-1",
        *,
        email: str | None = "ada@example.com",
        phone: str | None = None,
        channels: tuple[Channel, ...] = (Channel.EMAIL,),
        timezone: str = "UTC",
        quiet: tuple[time, time] | None = None,
        opted_out: bool = False,
        new_accounts_opt_in: bool = False,
        locale: str | None = None,
    ) -> None:
        self.preferences_store.put_preferences(
            StoredPreferences(
                external_customer_id=customer,
                updated_at=self.clock.now,
                email=email,
                phone=phone,
                channels=list(channels),
                timezone=timezone,
                quiet_hours=QuietHours(start=quiet[0], end=quiet[1]) if quiet else None,
                opted_out=opted_out,
                new_accounts_opt_in=new_accounts_opt_in,
                locale=locale,
            )
        )

    def episode_notes(self, customer: str = "customer-1", episode_id: str = "episode-1") -> dict[str, Any]:
        """What the notifier noted on the episode for support: ``deferred#<n>`` / ``skipped#<n>`` -> reason."""
        item = self.store._client.get_item(TableName=self.store._table, Key=episode_key(customer, episode_id))["Item"]
        return {name: from_item(item)[name]["reason"] for name in item if name.startswith(("deferred#", "skipped#"))}

    def episode(self, customer: str = "customer-1", episode_id: str = "episode-1") -> EpisodeNotice | None:
        for notice in self.store.customer_episodes(customer):
            if notice.episode_id == episode_id:
                return notice
        return None


def attention(
    connection: Connection, *, at: datetime | None = None, action: Action | None = None
) -> ConnectionNeedsAttention:
    """The `Connection Needs Attention` event the webhook writer put on the bus for ``connection``'s episode."""
    since = at or connection.attention_since or T0
    assert connection.episode_id is not None
    return ConnectionNeedsAttention(
        connection_id=connection.connection_id,
        external_customer_id=connection.external_customer_id,
        institution_id=connection.institution_id,
        institution_name=connection.institution_name,
        status=connection.status,
        status_reason=connection.status_reason,
        action=action or connection.action,
        episode_id=connection.episode_id,
        event_time=since,
        attention_since=since,
    )


def repaired(connection: Connection, *, at: datetime | None = None) -> ConnectionAttentionEnded:
    """The `Connection Attention Ended` event that ends ``connection``'s episode (as it was when it broke)."""
    assert connection.episode_id is not None
    assert connection.attention_since is not None
    return ConnectionAttentionEnded(
        connection_id=connection.connection_id,
        external_customer_id=connection.external_customer_id,
        institution_id=connection.institution_id,
        institution_name=connection.institution_name,
        status="ACTIVE",
        status_reason=None,
        action=Action.NONE,
        episode_id=connection.episode_id,
        event_time=at or connection.attention_since + timedelta(hours=1),
        resolution="REPAIRED",
        attention_since=connection.attention_since,
    )


def build_notifier(
    table_name: str,
    clock: Clock,
    *,
    wrap: Callable[[NotificationChannel], NotificationChannel] | None = None,
    schedule: ReminderSchedule | None = None,
    min_interval: timedelta = timedelta(hours=24),
    incidents: IncidentPolicy | None = None,
    bus: str | None = None,
    send_rate: int = 0,
    sleep: Callable[[float], None] | None = None,
    composer: MessageComposer | None = None,
) -> NotifierRig:
    """The notifier as wiring builds it (real adapters on moto), with an injected clock; institution incidents
    (told on ``bus``) and the send rate when asked for."""
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)
    dynamodb = boto3.client("dynamodb")
    email: NotificationChannel = SesEmailChannel(boto3.client("sesv2"), SENDER)
    channels: dict[Channel, NotificationChannel] = {
        Channel.EMAIL: wrap(email) if wrap else email,
        Channel.SMS: SnsSmsChannel(boto3.client("sns")),
    }
    connections = DynamoDBConnectionReader(dynamodb, table_name)
    preferences = DynamoDBPreferencesStore(dynamodb, table_name)
    store = DynamoDBNotificationStore(dynamodb, table_name)
    watch = None
    if incidents is not None:
        assert bus is not None, "incidents are told on the bus"
        watch = IncidentWatch(
            store=DynamoDBIncidentStore(dynamodb, table_name),
            publisher=EventBridgePublisher(boto3.client("events"), bus, "connection-repair"),
            policy=incidents,
            clock=clock,
        )
    pacer = SendPacer(DynamoDBSendCounter(dynamodb, table_name), send_rate, clock=clock, sleep=sleep or clock.sleep)
    notifier = Notifier(
        incidents=watch,
        pacer=pacer,
        connections=connections,
        preferences=preferences,
        store=store,
        channels=channels,
        composer=composer or MessageComposer(RECONNECT_URL, settings_url=SETTINGS_URL, app_name="Budgetly"),
        policy=NotificationPolicy(schedule=schedule or ReminderSchedule(), min_interval=min_interval),
        clock=clock,
    )
    return NotifierRig(notifier, store, connections, preferences, clock, table_name, channels)


def sent_emails() -> list[Any]:
    """Every email moto's SES accepted (SES v2 shares v1's backend): .subject, .body (the HTML part), .destinations."""
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def sent_sms() -> list[tuple[str, str]]:
    """(phone number, text) of every SMS moto's SNS accepted."""
    return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())
