"""The single DynamoDB table: connections and events (see docs/data-model.md for keys and access patterns)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import TypeAdapter

from connection_repair.models import AnyDownstreamEvent, Connection, StoredEvent, event_order_key
from connection_repair.ports import ConcurrentUpdate, DuplicateEvent, ExpectationUnmet

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import PutTypeDef, UpdateTypeDef

    from connection_repair.connection_state import QuietChange
    from connection_repair.preferences import StoredPreferences
else:
    DynamoDBClient = Any

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@cache
def _pending_adapter() -> TypeAdapter[list[AnyDownstreamEvent]]:
    # Built on first use: most webhooks never carry an outbox.
    return TypeAdapter(list[AnyDownstreamEvent])


CONNECTION_SK = "CONNECTION"
GSI1 = "gsi1"
# A customer has a handful of connections; this bounds what one list request reads.
MAX_LISTED_CONNECTIONS = 200
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
        item |= _customer_index(connection.external_customer_id, connection.connection_id)
    if connection.last_event_at is not None:
        item["lastEventKey"] = {"S": event_order_key(connection.last_event_at, connection.last_event_id or "")}
    return item


def _customer_index(external_customer_id: str, connection_id: str) -> dict[str, Any]:
    # GSI1: a customer's connections.
    return {"gsi1pk": {"S": f"CUST#{external_customer_id}"}, "gsi1sk": {"S": f"CONN#{connection_id}"}}


def quiet_update(connection_id: str, change: QuietChange) -> dict[str, Any]:
    """The UpdateItem arguments (without TableName) that apply ``change`` only where ``change.holds``."""
    values = Connection.model_validate({"connection_id": connection_id, **change.fields}).model_dump(mode="json")
    names: dict[str, str] = {}
    attribute_values: dict[str, Any] = {":key": {"S": change.order_key}, ":one": {"N": "1"}}
    sets = ["lastEventKey = :key"]
    removes: list[str] = []
    for field_name in change.fields:
        alias = Connection.model_fields[field_name].alias or field_name
        names[f"#{alias}"] = alias
        value = values[alias]
        if value is None:
            removes.append(f"#{alias}")
        else:
            attribute_values[f":{alias}"] = _serializer.serialize(value)
            sets.append(f"#{alias} = :{alias}")
    if "external_customer_id" in change.fields:
        for attribute, value in _customer_index(change.fields["external_customer_id"], connection_id).items():
            attribute_values[f":{attribute}"] = value
            sets.append(f"{attribute} = :{attribute}")

    conditions = [
        "attribute_exists(pk)",
        "(attribute_not_exists(lastEventKey) OR lastEventKey < :key)",
        # Repair and replacement bookkeeping is left to the full transition (see connection_state._plain).
        "attribute_not_exists(supersededBy)",
        "attribute_not_exists(replacesConnectionId)",
        "(attribute_not_exists(repairPending) OR repairPending = :false)",
        "(attribute_not_exists(failedRepairs) OR failedRepairs = :zero)",
    ]
    attribute_values |= {":false": {"BOOL": False}, ":zero": {"N": "0"}}
    if change.episode_action is not None:
        names["#episodeAction"] = "episodeAction"
        attribute_values[":episodeAction"] = {"S": change.episode_action.value}
        conditions.append("attribute_exists(episodeId) AND attribute_exists(attentionSince)")
        conditions.append("#episodeAction = :episodeAction")
    if change.no_episode:
        conditions.append("attribute_not_exists(episodeId)")
    if change.settled_status:
        names["#status"] = "status"
        attribute_values[":inProgress"] = {"S": "IN_PROGRESS"}
        conditions.append("attribute_exists(#status) AND #status <> :inProgress")

    expression = "SET " + ", ".join(sets) + " ADD version :one"
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    return {
        "Key": connection_key(connection_id),
        "UpdateExpression": expression,
        "ConditionExpression": " AND ".join(conditions),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": attribute_values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


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
        item["pending"] = {"S": _pending_adapter().dump_json(event.pending).decode()}
        item["leaseUntil"] = {"N": str(_epoch(lease_until))}
    return item


def event_from_item(item: dict[str, Any]) -> StoredEvent:
    values = _from_item(item)
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


def _cancellation_reasons(error: ClientError) -> list[dict[str, Any]]:
    """Per-item reasons of a cancelled transaction (empty for any other error)."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return []
    reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
    return reasons


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
            codes = [reason.get("Code") for reason in _cancellation_reasons(error)]
            if codes and codes[0] == "ConditionalCheckFailed":
                raise DuplicateEvent(event.event_id) from None
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                raise ConcurrentUpdate(connection.connection_id) from None
            raise

    def list_connections(self, external_customer_id: str) -> list[Connection]:
        # GSI1 is eventually consistent: a connection written a moment ago may show up a moment later.
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": GSI1,
            "KeyConditionExpression": "gsi1pk = :customer AND begins_with(gsi1sk, :prefix)",
            "ExpressionAttributeValues": {
                ":customer": {"S": f"CUST#{external_customer_id}"},
                ":prefix": {"S": "CONN#"},
            },
        }
        connections: list[Connection] = []
        while len(connections) < MAX_LISTED_CONNECTIONS:
            response = self._client.query(**query)
            connections.extend(connection_from_item(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return connections[:MAX_LISTED_CONNECTIONS]

    def save_connection(self, connection: Connection, *, expected_version: int | None) -> None:
        request: dict[str, Any] = {"TableName": self._table, "Item": connection_item(connection)}
        if expected_version is None:
            request["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            # The webhook writer relies on this too (docs/decisions.md §4).
            request["ConditionExpression"] = "version = :expected"
            request["ExpressionAttributeValues"] = {":expected": {"N": str(expected_version)}}
        try:
            self._client.put_item(**request)
        except ClientError as error:
            if _is_conditional_failure(error):
                raise ConcurrentUpdate(connection.connection_id) from None
            raise

    def save_quiet_event(self, event: StoredEvent, change: QuietChange) -> None:
        if event.connection_id is None:
            raise ValueError("a quiet change needs the event's connection")
        put_event = {
            "TableName": self._table,
            "Item": event_item(event, ttl=self._event_ttl, lease_until=event.received_at),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        update = {"TableName": self._table, **quiet_update(event.connection_id, change)}
        try:
            self._client.transact_write_items(
                TransactItems=[{"Put": cast("PutTypeDef", put_event)}, {"Update": cast("UpdateTypeDef", update)}]
            )
        except ClientError as error:
            reasons = _cancellation_reasons(error)
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                raise DuplicateEvent(event.event_id) from None
            if len(reasons) > 1 and reasons[1].get("Code") == "ConditionalCheckFailed":
                stored = reasons[1].get("Item")
                raise ExpectationUnmet(connection_from_item(stored) if stored else None) from None
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
        if not item:
            return None
        # Imported on use: the webhook function shares this store and never reads preferences (cold start).
        from connection_repair.preferences import StoredPreferences

        return StoredPreferences.model_validate(_from_item(item))

    def put_preferences(self, preferences: StoredPreferences) -> None:
        values: dict[str, Any] = preferences.model_dump(mode="json", exclude_none=True)
        item = _to_item(values) | preferences_key(preferences.external_customer_id)
        self._client.put_item(TableName=self._table, Item=item)
