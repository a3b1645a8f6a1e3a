"""``ConnectionHistory`` on the single table: a connection's stored events (GSI1 ``CONN#``), and the connections
that received any since a time (a scan of the stored events: an operator's replay, never a function's path)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connection_repair.adapters.dynamodb.events import connection_events_query, event_from_item
from connection_repair.adapters.dynamodb.keys import EVENT_SK
from connection_repair.adapters.dynamodb.paging import query_items
from connection_repair.outbox.ports import StoredEvent

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any


class DynamoDBConnectionHistory:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def events_of(self, connection_id: str) -> list[StoredEvent]:
        query = connection_events_query(self._table, connection_id)
        return [event_from_item(item) for item in query_items(self._client, query)]

    def connections_with_events_since(self, since: datetime) -> Iterator[str]:
        seen: set[str] = set()
        pages = self._client.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="sk = :event AND attribute_exists(connectionId)",
            ExpressionAttributeValues={":event": {"S": EVENT_SK}},
            ProjectionExpression="connectionId, receivedAt",
        )
        for page in pages:
            for item in page.get("Items", []):
                connection_id = item["connectionId"]["S"]
                # Compared as times: stored offsets and precision are not one fixed width.
                if connection_id not in seen and datetime.fromisoformat(item["receivedAt"]["S"]) >= since:
                    seen.add(connection_id)
                    yield connection_id
