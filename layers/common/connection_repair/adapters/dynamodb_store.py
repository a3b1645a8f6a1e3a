"""The single DynamoDB table: connections and events (see docs/data-model.md for keys and access patterns)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import TypeAdapter

from connection_repair.models import AnyDownstreamEvent, Connection, StoredEvent
from connection_repair.ports import ConcurrentUpdate, DuplicateEvent
from connection_repair.preferences import StoredPreferences

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import PutTypeDef
else:
    DynamoDBClient = Any

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_pending_adapter: TypeAdapter[list[AnyDownstreamEvent]] = TypeAdapter(list[AnyDownstreamEvent])

CONNECTION_SK = "CONNECTION"
EVENT_SK = "EVENT"
PREFERENCES_SK = "PREFERENCES"


def connection_key(connection_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"CONN#{connection_id}"}, "sk": {"S": CONNECTION_SK}}


def event_key(event_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"EVENT#{event_id}"}, "sk": {"S": EVENT_SK}}


def preferences_key(external_customer_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"CUST#{external_customer_id}"}, "sk": {"S": PREFERENCES_SK}}


def _to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items() if value is not None}


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def connection_item(connection: Connection) -> dict[str, Any]:
    values: dict[str, Any] = connection.model_dump(mode="json", exclude_none=True)
    item = _to_item(values) | connection_key(connection.connection_id)
    if connection.external_customer_id:
        # GSI1: a customer's connections.
        item["gsi1pk"] = {"S": f"CUST#{connection.external_customer_id}"}
        item["gsi1sk"] = {"S": f"CONN#{connection.connection_id}"}
    return item


def connection_from_item(item: dict[str, Any]) -> Connection:
    return Connection.model_validate(_from_item(item))


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def event_item(event: StoredEvent, *, ttl: timedelta, lease_until: datetime) -> dict[str, Any]:
    item: dict[str, Any] = {
        **event_key(event.event_id),
        "eventId": {"S": event.event_id},
        "eventType": {"S": event.event_type},
        "eventTime": {"S": event.event_time.isoformat()},
        "receivedAt": {"S": event.received_at.isoformat()},
        "retryCount": {"N": str(event.retry_count)},
        "rawBody": {"S": event.raw_body},
        "expiresAt": {"N": str(_epoch(event.received_at + ttl))},
    }
    if event.connection_id:
        # GSI1: a connection's events in time order.
        item["connectionId"] = {"S": event.connection_id}
        item["gsi1pk"] = {"S": f"CONN#{event.connection_id}"}
        item["gsi1sk"] = {"S": f"EVENT#{event.event_time.isoformat()}#{event.event_id}"}
    if event.pending:
        item["pending"] = {"S": _pending_adapter.dump_json(event.pending).decode()}
        item["leaseUntil"] = {"N": str(_epoch(lease_until))}
    return item


def event_from_item(item: dict[str, Any]) -> StoredEvent:
    values = _from_item(item)
    pending = _pending_adapter.validate_json(values["pending"]) if "pending" in values else []
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


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoDBConnectionStore:
    def __init__(self, client: DynamoDBClient, table_name: str, *, event_ttl: timedelta) -> None:
        self._client = client
        self._table = table_name
        self._event_ttl = event_ttl

    def get_connection(self, connection_id: str) -> Connection | None:
        response = self._client.get_item(TableName=self._table, Key=connection_key(connection_id), ConsistentRead=True)
        item = response.get("Item")
        return connection_from_item(item) if item else None

    def save_event(
        self,
        event: StoredEvent,
        *,
        lease_until: datetime,
        connection: Connection | None = None,
        expected_version: int | None = None,
    ) -> None:
        put_event: dict[str, Any] = {
            "TableName": self._table,
            "Item": event_item(event, ttl=self._event_ttl, lease_until=lease_until),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        if connection is None:
            try:
                self._client.put_item(**put_event)
            except ClientError as error:
                if _is_conditional_failure(error):
                    raise DuplicateEvent(event.event_id) from None
                raise
            return

        put_connection: dict[str, Any] = {"TableName": self._table, "Item": connection_item(connection)}
        if expected_version is None:
            put_connection["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put_connection["ConditionExpression"] = "version = :expected"
            put_connection["ExpressionAttributeValues"] = {":expected": {"N": str(expected_version)}}
        try:
            self._client.transact_write_items(
                TransactItems=[{"Put": cast("PutTypeDef", put_event)}, {"Put": cast("PutTypeDef", put_connection)}]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            cancellations: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
            reasons = [reason.get("Code") for reason in cancellations]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise DuplicateEvent(event.event_id) from None
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise ConcurrentUpdate(connection.connection_id) from None
            raise

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
                ExpressionAttributeValues={":until": {"N": str(_epoch(lease_until))}, ":now": {"N": str(_epoch(now))}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return []
            raise
        return event_from_item(response["Attributes"]).pending

    def clear_pending(self, event_id: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=event_key(event_id),
            UpdateExpression="REMOVE pending, leaseUntil",
        )

    def get_preferences(self, external_customer_id: str) -> StoredPreferences | None:
        response = self._client.get_item(
            TableName=self._table, Key=preferences_key(external_customer_id), ConsistentRead=True
        )
        item = response.get("Item")
        return StoredPreferences.model_validate(_from_item(item)) if item else None

    def put_preferences(self, preferences: StoredPreferences) -> None:
        values: dict[str, Any] = preferences.model_dump(mode="json", exclude_none=True)
        item = _to_item(values) | preferences_key(preferences.external_customer_id)
        self._client.put_item(TableName=self._table, Item=item)
