"""The notifier's use case: the table, SES v2 email and SNS SMS behind ``NotificationChannel``, the bus for
institution incidents."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

import boto3
from botocore.config import Config

from connection_repair.adapters.dynamodb.connections import DynamoDBConnectionReader
from connection_repair.adapters.dynamodb.incidents import DynamoDBIncidentStore
from connection_repair.adapters.dynamodb.notifications import DynamoDBNotificationStore
from connection_repair.adapters.dynamodb.preferences import DynamoDBPreferencesStore
from connection_repair.adapters.dynamodb.send_rate import DynamoDBSendCounter
from connection_repair.adapters.eventbridge import EventBridgePublisher
from connection_repair.adapters.sending import SEND_CONFIG
from connection_repair.adapters.ses import SesEmailChannel
from connection_repair.adapters.sns import SnsSmsChannel
from connection_repair.adapters.templates import S3TemplateSource
from connection_repair.domain.incident import IncidentPolicy
from connection_repair.messages.render import MessageRenderer
from connection_repair.notify.compose import MessageComposer
from connection_repair.notify.incidents import IncidentWatch
from connection_repair.notify.pacing import SendPacer
from connection_repair.notify.policy import NotificationPolicy
from connection_repair.notify.ports import NotificationChannel
from connection_repair.notify.schedule import ReminderSchedule
from connection_repair.notify.service import Notifier
from connection_repair.platform.settings import NotifierSettings
from connection_repair.preferences.model import Channel
from connection_repair.wiring.unsubscribe import unsubscribe_link

# No one waits on the notifier (its queue, its schedule): ordinary timeouts, standard retries for the table. Sends
# are never retried by the SDK (SEND_CONFIG).
NOTIFIER_AWS_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})


@cache
def notifier() -> Notifier:
    settings = NotifierSettings.from_env()
    dynamodb = boto3.client("dynamodb", config=NOTIFIER_AWS_CONFIG)
    channels: dict[Channel, NotificationChannel] = {Channel.SMS: SnsSmsChannel(boto3.client("sns", config=SEND_CONFIG))}
    if settings.sender_email:
        channels[Channel.EMAIL] = SesEmailChannel(
            boto3.client("sesv2", config=SEND_CONFIG),
            settings.sender_email,
            configuration_set=settings.ses_configuration_set,
        )
    schedule = ReminderSchedule(
        reminder_offsets=tuple(timedelta(hours=hours) for hours in settings.reminder_hours),
        digest_window=timedelta(minutes=settings.digest_window_minutes),
    )
    incidents = IncidentWatch(
        store=DynamoDBIncidentStore(dynamodb, settings.table_name),
        publisher=EventBridgePublisher(
            boto3.client("events", config=NOTIFIER_AWS_CONFIG), settings.event_bus_name, settings.event_source
        ),
        policy=IncidentPolicy(
            min_connections=settings.incident_min_connections,
            share_percent=settings.incident_share_percent,
            window=timedelta(minutes=settings.incident_window_minutes),
            hold=timedelta(hours=settings.incident_hold_hours),
        ),
    )
    return Notifier(
        incidents=incidents,
        pacer=SendPacer(DynamoDBSendCounter(dynamodb, settings.table_name), settings.send_rate_per_second),
        connections=DynamoDBConnectionReader(dynamodb, settings.table_name),
        preferences=DynamoDBPreferencesStore(dynamodb, settings.table_name),
        store=DynamoDBNotificationStore(dynamodb, settings.table_name),
        channels=channels,
        composer=composer(settings),
        policy=NotificationPolicy(
            schedule=schedule,
            min_interval=timedelta(hours=settings.min_interval_hours),
            sweep_max_items=settings.sweep_max_items,
        ),
    )


def composer(settings: NotifierSettings) -> MessageComposer:
    """The app's brand and links, with the deployment's own templates when it names an S3 prefix for them."""
    source = None
    if settings.templates_bucket:
        s3 = boto3.client("s3", config=NOTIFIER_AWS_CONFIG)
        source = S3TemplateSource(s3, settings.templates_bucket, settings.templates_prefix)
    return MessageComposer(
        settings.app_reconnect_url,
        settings_url=settings.app_settings_url,
        app_name=settings.app_name,
        logo_url=settings.app_logo_url,
        brand_color=settings.brand_color,
        default_locale=settings.default_locale,
        renderer=MessageRenderer(source),
        unsubscribe_link=unsubscribe_link(settings),
    )
