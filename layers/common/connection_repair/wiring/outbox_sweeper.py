"""The outbox sweeper's use case: the table's pending outboxes, published to the app's bus."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

import boto3
from botocore.config import Config

from connection_repair.adapters.dynamodb.connection_store import DynamoDBConnectionStore
from connection_repair.adapters.eventbridge import EventBridgePublisher
from connection_repair.outbox.sweep import OutboxSweep
from connection_repair.platform.settings import OutboxSweeperSettings

SWEEPER_AWS_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})
# A flush is a read, a claim, a publish and a clear: stop taking new ones with less than this left.
RESERVE_SECONDS = 10.0


@cache
def outbox_sweep() -> OutboxSweep:
    settings = OutboxSweeperSettings.from_env()
    return OutboxSweep(
        store=DynamoDBConnectionStore(
            boto3.client("dynamodb", config=SWEEPER_AWS_CONFIG),
            settings.table_name,
            event_ttl=timedelta(days=settings.event_ttl_days),
        ),
        publisher=EventBridgePublisher(
            boto3.client("events", config=SWEEPER_AWS_CONFIG), settings.event_bus_name, settings.event_source
        ),
        clock=lambda: datetime.now(UTC),
        reserve_seconds=RESERVE_SECONDS,
    )
