"""A query's items across every page DynamoDB answers it in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any


def query_items(client: DynamoDBClient, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each item ``query`` matches, page after page (a page ends at 1 MB); the next page is read only when needed."""
    request = dict(query)
    while True:
        response = client.query(**request)
        yield from response.get("Items", [])
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


# BatchGetItem's limit, and how many times keys DynamoDB left unprocessed are asked for again before giving up
# (throttling that lasts is an error).
BATCH_GET_KEYS = 100
BATCH_GET_ROUNDS = 5


def batch_get_items(
    client: DynamoDBClient, table: str, keys: list[dict[str, Any]], *, consistent: bool = False
) -> Iterator[dict[str, Any]]:
    """The items stored under ``keys`` (those that exist), 100 keys a request, unprocessed keys asked for again."""
    for start in range(0, len(keys), BATCH_GET_KEYS):
        request: dict[str, Any] = {table: {"Keys": keys[start : start + BATCH_GET_KEYS], "ConsistentRead": consistent}}
        for _ in range(BATCH_GET_ROUNDS):
            response = client.batch_get_item(RequestItems=request)
            yield from response.get("Responses", {}).get(table, [])
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise RuntimeError("DynamoDB left keys unprocessed after every retry")
