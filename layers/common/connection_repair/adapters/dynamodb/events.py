"""Stored events in the single table, and the outbox they carry (docs/decisions.md §5)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import TypeAdapter

from connection_repair.adapters.dynamodb.errors import is_conditional_failure
from connection_repair.adapters.dynamodb.keys import (
    GSI1,
    GSI2,
    SHARDS,
    epoch,
    event_key,
    from_item,
    outbox_index,
    outbox_partition,
)
from connection_repair.adapters.dynamodb.paging import query_items
from connection_repair.domain.bus_events import AnyDownstreamEvent
from connection_repair.domain.connection import event_order_key
from connection_repair.outbox.ports import PendingOutbox, StoredEvent

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any


@cache
def _pending_adapter() -> TypeAdapter[list[AnyDownstreamEvent]]:
    # Built on first use: most webhooks never carry an outbox.
    return TypeAdapter(list[AnyDownstreamEvent])


def event_item(event: StoredEvent, *, ttl: timedelta, lease_until: datetime) -> dict[str, Any]:
    item: dict[str, Any] = {
        **event_key(event.event_id),
        "eventId": {"S": event.event_id},
        "eventType": {"S": event.event_type},
        "eventTime": {"S": event.event_time.isoformat()},
        "receivedAt": {"S": event.received_at.isoformat()},
        "retryCount": {"N": str(event.retry_count)},
        "rawBody": {"S": event.raw_body},
    }
    expires = {"N": str(epoch(event.received_at + ttl))}
    if event.connection_id:
        # GSI1: a connection's events in time order (fixed-width UTC: Meld's offset and precision vary).
        item["connectionId"] = {"S": event.connection_id}
        item["gsi1pk"] = {"S": f"CONN#{event.connection_id}"}
        item["gsi1sk"] = {"S": f"EVENT#{event_order_key(event.event_time, event.event_id)}"}
    if event.pending:
        item["pending"] = {"S": _pending_adapter().dump_json(event.pending).decode()}
        item["leaseUntil"] = {"N": str(epoch(lease_until))}
        # Listed in GSI2 until published (the outbox sweep's list), and never expiring meanwhile: an event expiring
        # unpublished would lose its announcement. Its expiry is set when the outbox is cleared.
        item["expiresOncePublished"] = expires
        item |= outbox_index(event.event_id, event.received_at)
    else:
        item["expiresAt"] = expires
    return item


def connection_events_query(table: str, connection_id: str) -> dict[str, Any]:
    """The Query of a connection's stored events in GSI1, oldest first."""
    return {
        "TableName": table,
        "IndexName": GSI1,
        "KeyConditionExpression": "gsi1pk = :connection AND begins_with(gsi1sk, :prefix)",
        "ExpressionAttributeValues": {":connection": {"S": f"CONN#{connection_id}"}, ":prefix": {"S": "EVENT#"}},
    }


def event_from_item(item: dict[str, Any]) -> StoredEvent:
    values = from_item(item)
    pending = _pending_adapter().validate_json(values["pending"]) if "pending" in values else []
    return StoredEvent(
        event_id=values["eventId"],
        event_type=values["eventType"],
        event_time=values["eventTime"],
        connection_id=values.get("connectionId"),
        received_at=values["receivedAt"],
        retry_count=int(values["retryCount"]),
        raw_body=values["rawBody"],
        pending=pending,
    )


class DynamoDBOutboxStore:
    """``OutboxStore`` and ``PendingOutboxes``: reads a stored event, takes its publishing lease, clears its outbox;
    lists what is still pending."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get_event(self, event_id: str) -> StoredEvent | None:
        response = self._client.get_item(TableName=self._table, Key=event_key(event_id), ConsistentRead=True)
        item = response.get("Item")
        return event_from_item(item) if item else None

    def claim_pending(self, event_id: str, *, now: datetime, lease_until: datetime) -> list[AnyDownstreamEvent]:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=event_key(event_id),
                UpdateExpression="SET leaseUntil = :until",
                ConditionExpression="attribute_exists(pending) AND leaseUntil < :now",
                ExpressionAttributeValues={":until": {"N": str(epoch(lease_until))}, ":now": {"N": str(epoch(now))}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return []
            raise
        return event_from_item(response["Attributes"]).pending

    def clear_pending(self, event_id: str) -> None:
        # An event stored by an earlier version carries its expiresAt already (and no expiresOncePublished).
        self._client.update_item(
            TableName=self._table,
            Key=event_key(event_id),
            UpdateExpression=(
                "SET expiresAt = if_not_exists(expiresOncePublished, expiresAt) "
                "REMOVE pending, leaseUntil, expiresOncePublished, gsi2pk, gsi2sk"
            ),
        )

    def pending_outboxes(self) -> Iterator[PendingOutbox]:
        """Every stored event whose outbox is not cleared, shard by shard, oldest first within a shard."""
        for shard in range(SHARDS):
            query: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": GSI2,
                "KeyConditionExpression": "gsi2pk = :shard",
                "ExpressionAttributeValues": {":shard": outbox_partition(shard)},
                "ProjectionExpression": "eventId, receivedAt, leaseUntil",
            }
            for item in query_items(self._client, query):
                values = from_item(item)
                yield PendingOutbox(
                    event_id=values["eventId"],
                    received_at=datetime.fromisoformat(values["receivedAt"]),
                    lease_until=datetime.fromtimestamp(int(values.get("leaseUntil", 0)), UTC),
                )
