"""Institutions' break counts, connection counts and incidents in the single table (``INST#<institutionId>``).

Breaks are counted per minute (``BREAKS#<minute>``, expiring after a day): a window is one query over its minutes.
The connection count (``CENSUS``) is kept by ingestion, one more for each connection it stores for the first time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from connection_repair.adapters.dynamodb.errors import is_conditional_failure
from connection_repair.adapters.dynamodb.keys import (
    census_key,
    epoch,
    from_item,
    institution_partition,
    to_item,
)
from connection_repair.adapters.dynamodb.paging import batch_get_items
from connection_repair.domain.incident import InstitutionIncident
from connection_repair.platform.clock import utc_stamp

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

INCIDENT_SK = "INCIDENT"
BREAKS_PREFIX = "BREAKS#"
# Break counts are kept this long: far longer than any window, short enough to cost nothing.
BREAKS_RETENTION = timedelta(days=1)
ONGOING = "attribute_exists(pk) AND since = :since AND attribute_not_exists(endedAt)"


def incident_key(institution_id: str) -> dict[str, Any]:
    return {"pk": institution_partition(institution_id), "sk": {"S": INCIDENT_SK}}


def _minute(moment: datetime) -> str:
    return f"{BREAKS_PREFIX}{utc_stamp(moment)[:16]}"


def _incident(item: dict[str, Any]) -> InstitutionIncident:
    values = from_item(item)
    return InstitutionIncident.model_validate({name: values[name] for name in values if name not in ("pk", "sk")})


class DynamoDBIncidentStore:
    """``IncidentStore``."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def record_break(self, institution_id: str, at: datetime, *, window: timedelta) -> int:
        partition = institution_partition(institution_id)
        self._client.update_item(
            TableName=self._table,
            Key={"pk": partition, "sk": {"S": _minute(at)}},
            UpdateExpression="ADD breaks :one SET expiresAt = if_not_exists(expiresAt, :expires)",
            ExpressionAttributeValues={":one": {"N": "1"}, ":expires": {"N": str(epoch(at + BREAKS_RETENTION))}},
        )
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
            ExpressionAttributeValues={
                ":pk": partition,
                ":first": {"S": _minute(at - window + timedelta(minutes=1))},
                ":last": {"S": _minute(at)},
            },
            ProjectionExpression="breaks",
            ConsistentRead=True,
        )
        return sum(int(item["breaks"]["N"]) for item in response.get("Items", []))

    def connections(self, institution_id: str) -> int:
        item = self._client.get_item(TableName=self._table, Key=census_key(institution_id)).get("Item")
        return int(item["connections"]["N"]) if item else 0

    def incident(self, institution_id: str) -> InstitutionIncident | None:
        item = self._client.get_item(TableName=self._table, Key=incident_key(institution_id), ConsistentRead=True).get(
            "Item"
        )
        return _incident(item) if item else None

    def incidents(self, institution_ids: Sequence[str]) -> dict[str, InstitutionIncident]:
        keys = [incident_key(institution_id) for institution_id in dict.fromkeys(institution_ids)]
        incidents = (_incident(item) for item in batch_get_items(self._client, self._table, keys))
        return {incident.institution_id: incident for incident in incidents if incident.active}

    def start(self, incident: InstitutionIncident) -> bool:
        item = to_item(incident.model_dump(mode="json")) | incident_key(incident.institution_id)
        item["announced"] = {"BOOL": False}
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR attribute_exists(endedAt)",
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True

    def count(self, incident: InstitutionIncident, change: int) -> InstitutionIncident | None:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=incident_key(incident.institution_id),
                UpdateExpression="ADD broken :change",
                ConditionExpression=ONGOING,
                ExpressionAttributeValues={":change": {"N": str(change)}, ":since": self._since(incident)},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return None
            raise
        return _incident(response["Attributes"])

    def end(self, incident: InstitutionIncident, at: datetime) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=incident_key(incident.institution_id),
                UpdateExpression="SET endedAt = :at, announced = :false",
                ConditionExpression=ONGOING,
                ExpressionAttributeValues={
                    ":at": {"S": utc_stamp(at)},
                    ":false": {"BOOL": False},
                    ":since": self._since(incident),
                },
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True

    def announced(self, incident: InstitutionIncident) -> None:
        # Only the change that was told: a start told after the incident ended leaves the end still to tell.
        phase = "attribute_not_exists(endedAt)" if incident.active else "attribute_exists(endedAt)"
        try:
            self._client.update_item(
                TableName=self._table,
                Key=incident_key(incident.institution_id),
                UpdateExpression="SET announced = :true",
                ConditionExpression=f"since = :since AND {phase}",
                ExpressionAttributeValues={":true": {"BOOL": True}, ":since": self._since(incident)},
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise

    @staticmethod
    def _since(incident: InstitutionIncident) -> dict[str, Any]:
        return {"S": incident.model_dump(mode="json")["since"]}
