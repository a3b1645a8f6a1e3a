"""The webhook function's use case: verify, store once, apply in order, announce."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

import boto3
from botocore.config import Config

from connection_repair.adapters.dynamodb.connection_store import DynamoDBConnectionStore
from connection_repair.adapters.eventbridge import EventBridgePublisher
from connection_repair.adapters.secrets import secret_source
from connection_repair.ingestion.ingest import EventIngestor
from connection_repair.ingestion.ports import ConnectionDirectory
from connection_repair.ingestion.service import VerificationPolicy, WebhookIngestor
from connection_repair.platform.settings import WebhookSettings

# Meld waits 10 s for the webhook's answer: AWS calls get short timeouts and few retries.
WEBHOOK_AWS_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 3})


def _meld_directory(settings: WebhookSettings) -> ConnectionDirectory:
    # The one import kept out of the cold start: Meld's client brings httpx, and only a webhook naming a connection
    # we have never seen needs it (docs/performance.md).
    from connection_repair.wiring.meld import meld_directory

    return meld_directory(settings)


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
    events = EventIngestor(
        store=store,
        publisher=publisher,
        directory=cache(lambda: _meld_directory(settings)),
        max_failed_repairs=settings.max_failed_repairs,
    )
    return WebhookIngestor(policy=policy, events=events, forward=settings.forward_webhooks)
