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
