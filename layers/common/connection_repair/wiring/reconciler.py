"""The reconciler's use case: Meld's listing, the table, and the path a webhook takes for what differs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

import boto3
from botocore.config import Config

from connection_repair.adapters.dynamodb.connection_store import DynamoDBConnectionStore
from connection_repair.adapters.dynamodb.reconciliation import DynamoDBKnownConnections, DynamoDBProgressStore
from connection_repair.adapters.eventbridge import EventBridgePublisher
from connection_repair.adapters.meld.gateway import MeldConnectionListing
from connection_repair.ingestion.ingest import EventIngestor
from connection_repair.platform.settings import ReconcilerSettings
from connection_repair.reconcile.service import Reconciler
from connection_repair.wiring.meld import meld_client

RECONCILER_AWS_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 5})
# Kept back from the invocation's time: one Meld call with its retries, and storing where the run stopped.
RESERVE_AFTER_MELD_SECONDS = 10.0


@cache
def reconciler() -> Reconciler:
    settings = ReconcilerSettings.from_env()
    dynamodb = boto3.client("dynamodb", config=RECONCILER_AWS_CONFIG)
    meld = MeldConnectionListing(
        meld_client(settings, deadline_seconds=settings.meld_deadline_seconds, max_attempts=settings.meld_max_attempts)
    )
    events = EventIngestor(
        store=DynamoDBConnectionStore(dynamodb, settings.table_name, event_ttl=timedelta(days=settings.event_ttl_days)),
        publisher=EventBridgePublisher(
            boto3.client("events", config=RECONCILER_AWS_CONFIG), settings.event_bus_name, settings.event_source
        ),
        directory=lambda: meld,
        max_failed_repairs=settings.max_failed_repairs,
    )
    return Reconciler(
        meld=meld,
        known=DynamoDBKnownConnections(dynamodb, settings.table_name),
        progress=DynamoDBProgressStore(dynamodb, settings.table_name),
        events=events,
        clock=lambda: datetime.now(UTC),
        reserve_seconds=settings.meld_deadline_seconds + RESERVE_AFTER_MELD_SECONDS,
    )
