"""What reconciliation reads and keeps in the single table: connections by id, the open ones, where a run stopped."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from connection_repair.adapters.dynamodb.connections import connection_from_item
from connection_repair.adapters.dynamodb.keys import (
    GSI2,
    SHARDS,
    connection_key,
    from_item,
    open_partition,
)
from connection_repair.adapters.dynamodb.paging import batch_get_items, query_items
from connection_repair.domain.connection import Connection
from connection_repair.reconcile.ports import Mode, Progress

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any


def progress_key(mode: Mode) -> dict[str, Any]:
    return {"pk": {"S": f"RECONCILE#{mode}"}, "sk": {"S": "PROGRESS"}}


class DynamoDBKnownConnections:
    """``KnownConnections``: connections in batches, read consistently, and the sparse index of open ones."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get_connections(self, connection_ids: Sequence[str]) -> dict[str, Connection]:
        keys = [connection_key(connection_id) for connection_id in dict.fromkeys(connection_ids)]
        connections = (
            connection_from_item(item) for item in batch_get_items(self._client, self._table, keys, consistent=True)
        )
        return {connection.connection_id: connection for connection in connections}

    def open_connections(self, after: str | None) -> Iterator[tuple[str, Connection]]:
        """Shard by shard, in connection id order; the cursor is ``<shard>#<connectionId>``."""
        first_shard, _, after_id = (after or "0#").partition("#")
        for shard in range(int(first_shard), SHARDS):
            query: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": GSI2,
                "KeyConditionExpression": "gsi2pk = :shard",
                "ExpressionAttributeValues": {":shard": open_partition(shard)},
            }
            if after_id and shard == int(first_shard):
                query["KeyConditionExpression"] += " AND gsi2sk > :after"
                query["ExpressionAttributeValues"][":after"] = {"S": f"CONN#{after_id}"}
            for item in query_items(self._client, query):
                connection = connection_from_item(item)
                yield f"{shard}#{connection.connection_id}", connection


class DynamoDBProgressStore:
    """``ProgressStore``: one item per mode, ``RECONCILE#<mode>`` / ``PROGRESS``."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def load_progress(self, mode: Mode) -> Progress | None:
        response = self._client.get_item(TableName=self._table, Key=progress_key(mode), ConsistentRead=True)
        item = response.get("Item")
        return Progress.model_validate_json(from_item(item)["progress"]) if item else None

    def save_progress(self, progress: Progress) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={**progress_key(progress.mode), "progress": {"S": progress.model_dump_json()}},
        )

    def clear_progress(self, mode: Mode) -> None:
        self._client.delete_item(TableName=self._table, Key=progress_key(mode))
