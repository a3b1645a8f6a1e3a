"""The notifier's sends per channel per second (``SEND_RATE#<channel>`` / ``<second>``), shared by every invocation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from connection_repair.adapters.dynamodb.errors import is_conditional_failure
from connection_repair.adapters.dynamodb.keys import epoch
from connection_repair.preferences.model import Channel

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

# A second's count is of no use after it; kept an hour (TTL) for whoever looks at the rate afterwards.
RETENTION = timedelta(hours=1)


class DynamoDBSendCounter:
    """``SendCounter``: one conditional ADD per send, refused once the second holds ``limit``."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def take(self, channel: Channel, second: datetime, limit: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"SEND_RATE#{channel.value}"}, "sk": {"S": second.strftime("%Y-%m-%dT%H:%M:%SZ")}},
                UpdateExpression="ADD sends :one SET expiresAt = if_not_exists(expiresAt, :expires)",
                ConditionExpression="attribute_not_exists(sends) OR sends < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":expires": {"N": str(epoch(second + RETENTION))},
                },
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True
