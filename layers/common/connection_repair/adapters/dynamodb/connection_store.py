"""Ingestion's and the replacer's writes: an event and its connection's new state in one request."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from connection_repair.adapters.dynamodb.connections import (
    DynamoDBConnectionReader,
    connection_from_item,
    connection_update,
)
from connection_repair.adapters.dynamodb.errors import failed_condition, is_conditional_failure
from connection_repair.adapters.dynamodb.events import DynamoDBOutboxStore, event_item
from connection_repair.adapters.dynamodb.keys import census_key, connection_key, customer_index, serialize
from connection_repair.domain.connection import Connection
from connection_repair.domain.errors import ConcurrentUpdate, DuplicateEvent
from connection_repair.domain.transitions import SilentUpdate
from connection_repair.ingestion.ports import ExpectationUnmet
from connection_repair.outbox.ports import StoredEvent
from connection_repair.platform.aws import cancellation_reasons

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import PutTypeDef, TransactWriteItemTypeDef, UpdateTypeDef
else:
    DynamoDBClient = Any


def silent_update_request(connection_id: str, change: SilentUpdate) -> dict[str, Any]:
    """The UpdateItem arguments (without TableName) that apply ``change`` only where ``change.holds``."""
    values = Connection.model_validate({"connection_id": connection_id, **change.fields}).model_dump(mode="json")
    names: dict[str, str] = {}
    attribute_values: dict[str, Any] = {":one": {"N": "1"}}
    sets: list[str] = []
    if change.ordered:
        attribute_values[":key"] = {"S": change.order_key}
        sets.append("lastEventKey = :key")
    removes: list[str] = []
    for field_name in change.fields:
        alias = Connection.model_fields[field_name].alias or field_name
        names[f"#{alias}"] = alias
        value = values[alias]
        if value is None:
            removes.append(f"#{alias}")
        else:
            attribute_values[f":{alias}"] = serialize(value)
            sets.append(f"#{alias} = :{alias}")
    if "external_customer_id" in change.fields:
        for attribute, value in customer_index(change.fields["external_customer_id"], connection_id).items():
            attribute_values[f":{attribute}"] = value
            sets.append(f"{attribute} = :{attribute}")

    conditions = [
        "attribute_exists(pk)",
        # Repair and replacement bookkeeping is left to the full transition (see connection_state._plain).
        "attribute_not_exists(supersededBy)",
        "attribute_not_exists(replacesConnectionId)",
        "(attribute_not_exists(repairPending) OR repairPending = :false)",
        "(attribute_not_exists(failedRepairs) OR failedRepairs = :zero)",
    ]
    attribute_values |= {":false": {"BOOL": False}, ":zero": {"N": "0"}}
    if change.ordered:
        conditions.append("(attribute_not_exists(lastEventKey) OR lastEventKey < :key)")
    if change.episode_action is not None:
        names["#episodeAction"] = "episodeAction"
        attribute_values[":episodeAction"] = {"S": change.episode_action.value}
        conditions.append("attribute_exists(episodeId) AND attribute_exists(attentionSince)")
        conditions.append("#episodeAction = :episodeAction")
    if change.no_episode:
        conditions.append("attribute_not_exists(episodeId)")
    if "external_customer_id" in change.fields:
        conditions.append("(attribute_exists(externalCustomerId) OR attribute_not_exists(episodeId))")
    if change.settled_status:
        names["#status"] = "status"
        attribute_values[":inProgress"] = {"S": "IN_PROGRESS"}
        conditions.append("attribute_exists(#status) AND #status <> :inProgress")

    expression = ("SET " + ", ".join(sets) + " " if sets else "") + "ADD version :one"
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


class DynamoDBConnectionStore(DynamoDBConnectionReader, DynamoDBOutboxStore):
    """``ConnectionStore``: an event and its connection's new state in one write request, and the event's outbox."""

    def __init__(self, client: DynamoDBClient, table_name: str, *, event_ttl: timedelta) -> None:
        super().__init__(client, table_name)
        self._event_ttl = event_ttl

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
                if is_conditional_failure(error):
                    raise DuplicateEvent(event.event_id) from None
                raise
            return

        update_connection = {"TableName": self._table, **connection_update(connection, expected_version)}
        items: list[TransactWriteItemTypeDef] = [
            {"Put": cast("PutTypeDef", put_event)},
            {"Update": cast("UpdateTypeDef", update_connection)},
        ]
        if expected_version is None and connection.institution_id:
            # A connection stored for the first time counts in its institution's census (incident thresholds).
            census = {
                "TableName": self._table,
                "Key": census_key(connection.institution_id),
                "UpdateExpression": "ADD connections :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
            items.append({"Update": cast("UpdateTypeDef", census)})
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as error:
            reasons = cancellation_reasons(error) or []
            if failed_condition(reasons, 0):
                raise DuplicateEvent(event.event_id) from None
            if failed_condition(reasons, 1):
                raise ConcurrentUpdate(connection.connection_id) from None
            raise

    def save_silent_update(
        self, event: StoredEvent, change: SilentUpdate, *, lease_until: datetime | None = None
    ) -> None:
        if event.connection_id is None:
            raise ValueError("a silent update needs the event's connection")
        put_event = {
            "TableName": self._table,
            "Item": event_item(event, ttl=self._event_ttl, lease_until=lease_until or event.received_at),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        update = {"TableName": self._table, **silent_update_request(event.connection_id, change)}
        try:
            self._client.transact_write_items(
                TransactItems=[{"Put": cast("PutTypeDef", put_event)}, {"Update": cast("UpdateTypeDef", update)}]
            )
        except ClientError as error:
            reasons = cancellation_reasons(error) or []
            if failed_condition(reasons, 0):
                raise DuplicateEvent(event.event_id) from None
            if failed_condition(reasons, 1):
                stored = reasons[1].get("Item")
                raise ExpectationUnmet(connection_from_item(stored) if stored else None) from None
            raise
