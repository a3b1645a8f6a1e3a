"""A customer's notification preferences in the single table: ``PreferencesStore``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connection_repair.adapters.dynamodb.keys import from_item, preferences_key, to_item
from connection_repair.preferences.model import StoredPreferences

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any


class DynamoDBPreferencesStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get_preferences(self, external_customer_id: str) -> StoredPreferences | None:
        response = self._client.get_item(
            TableName=self._table, Key=preferences_key(external_customer_id), ConsistentRead=True
        )
        item = response.get("Item")
        return StoredPreferences.model_validate(from_item(item)) if item else None

    def put_preferences(self, preferences: StoredPreferences) -> None:
        values: dict[str, Any] = preferences.model_dump(mode="json", exclude_none=True)
        item = to_item(values) | preferences_key(preferences.external_customer_id)
        self._client.put_item(TableName=self._table, Item=item)
