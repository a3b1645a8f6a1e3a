"""The replay's use case (`make replay`), built for the stack an operator names: its table and bus, with the settings
its webhook function runs with (how long events are kept, how many failed repairs end in a new connection)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connection_repair.adapters.dynamodb.connection_store import DynamoDBConnectionStore
from connection_repair.adapters.dynamodb.history import DynamoDBConnectionHistory
from connection_repair.adapters.eventbridge import EventBridgePublisher
from connection_repair.platform.settings import ReplaySettings
from connection_repair.replay.service import ConnectionReplay


def connection_replay(dynamodb: Any, events: Any, settings: ReplaySettings) -> ConnectionReplay:
    return ConnectionReplay(
        store=DynamoDBConnectionStore(dynamodb, settings.table_name, event_ttl=timedelta(days=settings.event_ttl_days)),
        history=DynamoDBConnectionHistory(dynamodb, settings.table_name),
        publisher=EventBridgePublisher(events, settings.event_bus_name, settings.event_source),
        clock=lambda: datetime.now(UTC),
        max_failed_repairs=settings.max_failed_repairs,
    )
