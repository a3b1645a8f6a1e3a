"""Builds each function's use case from configuration, once per cold start (the composition root).

Handlers call these factories; tests clear their caches between environments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from connection_repair.adapters.dynamodb_store import DynamoDBConnectionStore
from connection_repair.adapters.secrets import secret_source
from connection_repair.settings import MeldApiSettings, RepairApiSettings, WebhookSettings

# Each function imports only its own use case (in its factory): the others' modules are not its cold start.
if TYPE_CHECKING:
    from connection_repair.adapters.meld import MeldClient
    from connection_repair.ingest import WebhookIngestor
    from connection_repair.notifications import Notifier
    from connection_repair.ports import ConnectGateway, ConnectionDirectory, RepairConnectGrant, StartConnectGrant
    from connection_repair.repair import RepairService
    from connection_repair.replacement import ConnectionRetirer

# Meld waits 10 s for the webhook's answer: AWS calls get short timeouts and few retries.
WEBHOOK_AWS_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 3})


class MissingConfiguration(Exception):
    """A required setting or secret is absent: a deployment problem, not a caller's."""


def meld_api_key(settings: MeldApiSettings) -> Callable[[], str]:
    values = secret_source(name=settings.meld_api_key_secret_name, direct=(settings.meld_api_key,), keys=("apiKey",))

    def current() -> str:
        keys = values()
        if not keys:
            raise MissingConfiguration("no Meld API key: set MELD_API_KEY or MELD_API_KEY_SECRET_NAME")
        return keys[0]

    return current


def meld_client(settings: MeldApiSettings, *, deadline_seconds: float, max_attempts: int) -> MeldClient:
    from connection_repair.adapters.meld import MeldClient

    return MeldClient(
        settings.meld_api_base_url,
        meld_api_key(settings),
        meld_version=settings.meld_version,
        timeout=settings.meld_timeout_seconds,
        deadline_seconds=deadline_seconds,
        max_attempts=max_attempts,
    )


def meld_directory(settings: MeldApiSettings) -> ConnectionDirectory:
    # httpx is imported only when a webhook names a connection we have never seen (keeps cold starts small).
    from connection_repair.adapters.meld import MeldConnectionDirectory

    # Inside Meld's 10 s: at most two quick tries; a failure answers 5xx and Meld retries later.
    return MeldConnectionDirectory(meld_client(settings, deadline_seconds=4.0, max_attempts=2))


@cache
def webhook_ingestor() -> WebhookIngestor:
    from connection_repair.adapters.event_bus import EventBridgePublisher
    from connection_repair.ingest import VerificationPolicy, WebhookIngestor

    settings = WebhookSettings.from_env()
    store = DynamoDBConnectionStore(
        boto3.client("dynamodb", config=WEBHOOK_AWS_CONFIG),
        settings.table_name,
        event_ttl=timedelta(days=settings.event_ttl_days),
    )
    publisher = EventBridgePublisher(
        boto3.client("events", config=WEBHOOK_AWS_CONFIG), settings.event_bus_name, settings.event_source
    )
    secrets = secret_source(
        name=settings.webhook_secret_name,
        direct=(settings.webhook_secret, settings.webhook_secret_previous),
        keys=("current", "previous"),
    )
    policy = VerificationPolicy(
        url=settings.webhook_url,
        secrets=secrets,
        tolerance_seconds=settings.tolerance_seconds,
        max_body_bytes=settings.max_body_bytes,
    )
    directory = cache(lambda: meld_directory(settings))
    return WebhookIngestor(
        policy=policy,
        store=store,
        publisher=publisher,
        directory=directory,
        max_failed_repairs=settings.max_failed_repairs,
    )


# The Repair API answers people: AWS calls get short timeouts so a slow dependency fails inside API Gateway's 29 s.
API_AWS_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 3})


@cache
def repair_api_settings() -> RepairApiSettings:
    return RepairApiSettings.from_env()


class DeferredGateway:
    """A ``ConnectGateway`` that builds the real one (the Meld client, and so httpx) on its first call.

    Most Repair API requests (the connection list, one connection, preferences) never call Meld, and a cold start
    that serves one of them should not import httpx (docs/decisions.md §28).
    """

    def __init__(self, build: Callable[[], ConnectGateway]) -> None:
        self._build = cache(build)

    def repair(self, connection_id: str) -> RepairConnectGrant:
        return self._build().repair(connection_id)

    def start(
        self, external_customer_id: str, *, institution_id: str | None, products: Sequence[str] | None
    ) -> StartConnectGrant:
        return self._build().start(external_customer_id, institution_id=institution_id, products=products)

    def delete(self, connection_id: str) -> None:
        self._build().delete(connection_id)


@cache
def repair_service() -> RepairService:
    from connection_repair.repair import RepairService

    settings = repair_api_settings()
    store = DynamoDBConnectionStore(
        boto3.client("dynamodb", config=API_AWS_CONFIG),
        settings.table_name,
        event_ttl=timedelta(days=settings.event_ttl_days),
    )

    def gateway() -> ConnectGateway:
        from connection_repair.adapters.meld_gateway import MeldConnectGateway

        # Bounded: every retry and backoff ends by the deadline, well inside API Gateway's 29 s.
        client = meld_client(
            settings, deadline_seconds=settings.meld_deadline_seconds, max_attempts=settings.meld_max_attempts
        )
        return MeldConnectGateway(client)

    return RepairService(connections=store, preferences=store, meld=DeferredGateway(gateway))


@cache
def connection_retirer() -> ConnectionRetirer:
    from connection_repair.adapters.event_bus import EventBridgePublisher
    from connection_repair.adapters.meld_gateway import MeldConnectGateway
    from connection_repair.replacement import ConnectionRetirer
    from connection_repair.settings import ReplacerSettings

    settings = ReplacerSettings.from_env()
    store = DynamoDBConnectionStore(
        boto3.client("dynamodb"), settings.table_name, event_ttl=timedelta(days=settings.event_ttl_days)
    )
    publisher = EventBridgePublisher(boto3.client("events"), settings.event_bus_name, settings.event_source)
    # Asynchronous: no one waits, so the client may take its time; EventBridge retries the invocation after that.
    client = meld_client(settings, deadline_seconds=20.0, max_attempts=4)
    return ConnectionRetirer(store=store, publisher=publisher, meld=MeldConnectGateway(client))


@cache
def notifier() -> Notifier:
    """The notifier's use case: the table, SES v2 email and SNS SMS behind ``NotificationChannel``."""
    from connection_repair.adapters.channels import SesEmailChannel, SnsSmsChannel
    from connection_repair.adapters.notification_store import DynamoDBNotificationStore
    from connection_repair.notification_ports import NotificationChannel
    from connection_repair.notifications import (
        MessageComposer,
        NotificationPolicy,
        Notifier,
        ReminderSchedule,
    )
    from connection_repair.preferences import Channel
    from connection_repair.settings import NotifierSettings

    settings = NotifierSettings.from_env()
    dynamodb = boto3.client("dynamodb", config=NOTIFIER_AWS_CONFIG)
    channels: dict[Channel, NotificationChannel] = {
        Channel.SMS: SnsSmsChannel(boto3.client("sns", config=NOTIFIER_AWS_CONFIG))
    }
    if settings.sender_email:
        channels[Channel.EMAIL] = SesEmailChannel(
            boto3.client("sesv2", config=NOTIFIER_AWS_CONFIG),
            settings.sender_email,
            configuration_set=settings.ses_configuration_set,
        )
    schedule = ReminderSchedule(
        reminder_offsets=tuple(timedelta(hours=hours) for hours in settings.reminder_hours),
        digest_window=timedelta(minutes=settings.digest_window_minutes),
    )
    return Notifier(
        connections=DynamoDBConnectionStore(dynamodb, settings.table_name, event_ttl=timedelta(days=90)),
        store=DynamoDBNotificationStore(dynamodb, settings.table_name),
        channels=channels,
        composer=MessageComposer(settings.app_reconnect_url, app_name=settings.app_name),
        policy=NotificationPolicy(
            schedule=schedule,
            min_interval=timedelta(hours=settings.min_interval_hours),
            sweep_max_items=settings.sweep_max_items,
        ),
    )


# The notifier runs asynchronously (EventBridge, schedule): ordinary timeouts, standard retries.
NOTIFIER_AWS_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})
