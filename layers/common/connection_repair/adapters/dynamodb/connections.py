"""Connections in the single table, and the writes that change one together with its event."""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from connection_repair.adapters.dynamodb.errors import is_conditional_failure
from connection_repair.adapters.dynamodb.keys import (
    GSI1,
    connection_key,
    customer_index,
    customer_partition,
    from_item,
    open_index,
    to_item,
)
from connection_repair.adapters.dynamodb.paging import query_items
from connection_repair.domain.connection import Connection, event_order_key
from connection_repair.domain.errors import ConcurrentUpdate

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

# A customer has a handful of connections; this bounds what one list request reads.
MAX_LISTED_CONNECTIONS = 200


def connection_item(connection: Connection) -> dict[str, Any]:
    values: dict[str, Any] = connection.model_dump(mode="json", exclude_none=True)
    item = to_item(values) | connection_key(connection.connection_id)
    if connection.external_customer_id:
        item |= customer_index(connection.external_customer_id, connection.connection_id)
    if connection.episode_id is not None or connection.repair_pending:
        item |= open_index(connection.connection_id)
    if connection.last_event_at is not None:
        item["lastEventKey"] = {"S": event_order_key(connection.last_event_at, connection.last_event_id or "")}
    return item


# The attributes this version writes on a connection item (besides its key).
KNOWN_ATTRIBUTES: frozenset[str] = frozenset(
    {field.alias or name for name, field in Connection.model_fields.items()}
    | {"gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "lastEventKey"}
)


def connection_update(connection: Connection, expected_version: int | None) -> dict[str, Any]:
    """The UpdateItem arguments (without TableName) that write ``connection`` if the stored one still has
    ``expected_version`` (None: none is stored yet).

    Every attribute this version knows is set, or removed when it has no value; any other attribute is left as it is:
    during a rolling deploy an older version writing the item must not erase what a newer one added.
    """
    key = connection_key(connection.connection_id)
    written = {name: value for name, value in connection_item(connection).items() if name not in key}
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets: list[str] = []
    for index, (name, value) in enumerate(sorted(written.items())):
        names[f"#s{index}"] = name
        values[f":s{index}"] = value
        sets.append(f"#s{index} = :s{index}")
    removes: list[str] = []
    for index, name in enumerate(sorted(KNOWN_ATTRIBUTES - written.keys())):
        names[f"#r{index}"] = name
        removes.append(f"#r{index}")
    condition = version_condition(expected_version)
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    return {
        "Key": key,
        "UpdateExpression": expression,
        "ConditionExpression": condition["ConditionExpression"],
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values | condition.get("ExpressionAttributeValues", {}),
    }


def connection_from_item(item: dict[str, Any]) -> Connection:
    return Connection.model_validate(from_item(item))


def version_condition(expected_version: int | None) -> dict[str, Any]:
    """Optimistic concurrency: the stored connection still has ``expected_version`` (None: none is stored yet)."""
    if expected_version is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    return {
        "ConditionExpression": "version = :expected",
        "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
    }


class DynamoDBConnectionReader:
    """``ConnectionReader``: one connection, read consistently."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get_connection(self, connection_id: str) -> Connection | None:
        response = self._client.get_item(TableName=self._table, Key=connection_key(connection_id), ConsistentRead=True)
        item = response.get("Item")
        return connection_from_item(item) if item else None


def customer_connections_query(table: str, external_customer_id: str) -> dict[str, Any]:
    """The Query of a customer's connections in GSI1."""
    return {
        "TableName": table,
        "IndexName": GSI1,
        "KeyConditionExpression": "gsi1pk = :customer AND begins_with(gsi1sk, :prefix)",
        "ExpressionAttributeValues": {":customer": customer_partition(external_customer_id), ":prefix": {"S": "CONN#"}},
    }


class DynamoDBCustomerConnections(DynamoDBConnectionReader):
    """``CustomerConnections``: the Repair API's reads and its conditional writes of a connection."""

    def list_connections(self, external_customer_id: str) -> list[Connection]:
        # GSI1 is eventually consistent: a connection written a moment ago may show up a moment later.
        query = customer_connections_query(self._table, external_customer_id)
        items = islice(query_items(self._client, query), MAX_LISTED_CONNECTIONS)
        return [connection_from_item(item) for item in items]

    def save_connection(self, connection: Connection, *, expected_version: int | None) -> None:
        # The webhook writer relies on the version condition too (docs/decisions.md §4).
        request = {"TableName": self._table, **connection_update(connection, expected_version)}
        try:
            self._client.update_item(**request)
        except ClientError as error:
            if is_conditional_failure(error):
                raise ConcurrentUpdate(connection.connection_id) from None
            raise
