"""``CustomerRecords`` on the single table: the customer's partition, their connections (GSI1 ``CUST#``) and each
connection's stored events (GSI1 ``CONN#``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from connection_repair.adapters.dynamodb.connections import customer_connections_query
from connection_repair.adapters.dynamodb.errors import is_conditional_failure
from connection_repair.adapters.dynamodb.events import connection_events_query
from connection_repair.adapters.dynamodb.keys import customer_partition
from connection_repair.adapters.dynamodb.paging import query_items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

# The fields of Meld's bodies (webhooks, connections read back) that name the customer.
CUSTOMER_FIELDS = frozenset({"externalCustomerId", "customerId"})


def without_customer(value: Any) -> Any:
    """``value`` with every customer field removed, however deep."""
    if isinstance(value, dict):
        return {name: without_customer(inner) for name, inner in value.items() if name not in CUSTOMER_FIELDS}
    if isinstance(value, list):
        return [without_customer(inner) for inner in value]
    return value


class DynamoDBCustomerRecords:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def delete_customer_items(self, external_customer_id: str) -> int:
        query = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": customer_partition(external_customer_id)},
            "ProjectionExpression": "pk, sk",
        }
        deleted = 0
        for item in list(query_items(self._client, query)):
            self._client.delete_item(TableName=self._table, Key={"pk": item["pk"], "sk": item["sk"]})
            deleted += 1
        return deleted

    def detach_connections(self, external_customer_id: str) -> list[str]:
        query = customer_connections_query(self._table, external_customer_id)
        query["ProjectionExpression"] = "pk, sk, connectionId"
        detached: list[str] = []
        for item in list(query_items(self._client, query)):
            try:
                # Every writer of a connection conditions on its version: this write moves it on too.
                self._client.update_item(
                    TableName=self._table,
                    Key={"pk": item["pk"], "sk": item["sk"]},
                    UpdateExpression="REMOVE externalCustomerId, customerId, gsi1pk, gsi1sk ADD version :one",
                    ConditionExpression="externalCustomerId = :customer",
                    ExpressionAttributeValues={":customer": {"S": external_customer_id}, ":one": {"N": "1"}},
                )
            except ClientError as error:
                if not is_conditional_failure(error):
                    raise
                continue  # no longer theirs (the index lags the table)
            detached.append(item["connectionId"]["S"])
        return detached

    def redact_events(self, connection_id: str, external_customer_id: str) -> int:
        query = connection_events_query(self._table, connection_id)
        query["ProjectionExpression"] = "pk, sk, rawBody"
        redacted = 0
        for item in list(query_items(self._client, query)):
            raw = item.get("rawBody", {}).get("S", "")
            try:
                body = json.loads(raw)
            except ValueError:
                continue  # not JSON: nothing Meld sent, nothing naming the customer
            cleaned = without_customer(body)
            if cleaned == body:
                continue
            self._client.update_item(
                TableName=self._table,
                Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression="SET rawBody = :body",
                ExpressionAttributeValues={":body": {"S": json.dumps(cleaned, separators=(",", ":"))}},
            )
            redacted += 1
        return redacted
