"""The replacer's use case: replace a connection once its replacement works."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

import boto3

from connection_repair.adapters.dynamodb.connection_store import DynamoDBConnectionStore
from connection_repair.adapters.eventbridge import EventBridgePublisher
from connection_repair.adapters.meld.gateway import MeldConnectGateway, MeldConnectionDirectory
from connection_repair.platform.settings import ReplacerSettings
from connection_repair.replacement.service import ConnectionReplacer
from connection_repair.wiring.meld import meld_client


@cache
def connection_replacer() -> ConnectionReplacer:
    settings = ReplacerSettings.from_env()
    store = DynamoDBConnectionStore(
        boto3.client("dynamodb"), settings.table_name, event_ttl=timedelta(days=settings.event_ttl_days)
    )
    publisher = EventBridgePublisher(boto3.client("events"), settings.event_bus_name, settings.event_source)
    # Asynchronous: no one waits, so the client may take its time; EventBridge retries the invocation after that.
    meld = meld_client(settings, deadline_seconds=20.0, max_attempts=4)
    return ConnectionReplacer(
        store=store, publisher=publisher, meld=MeldConnectGateway(meld), directory=MeldConnectionDirectory(meld)
    )
