"""Builds each function's use case from configuration, once per cold start (the composition root).

Handlers call these factories; tests clear their caches between environments.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from connection_repair.adapters.dynamodb_store import DynamoDBConnectionStore
from connection_repair.adapters.event_bus import EventBridgePublisher
from connection_repair.adapters.secrets import secret_source
from connection_repair.ingest import VerificationPolicy, WebhookIngestor
from connection_repair.settings import MeldApiSettings, WebhookSettings

if TYPE_CHECKING:
    from connection_repair.adapters.meld import MeldClient
    from connection_repair.ports import ConnectionDirectory

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
    return WebhookIngestor(policy=policy, store=store, publisher=publisher, directory=directory)
