"""The notifier's items in the single table (docs/data-model.md, "Notification items").

All of a customer's notification state lives in the customer's partition, next to their preferences:
episode state ``NOTIFY#EPISODE#<episodeId>``, message claims ``NOTIFY#MSG#<episodeId>#<n>`` and the send slot
``NOTIFY#CUSTOMER``. Episodes with a message to send carry ``gsi2pk``/``gsi2sk`` (sparse index ``gsi2``): the sweep
queries ``gsi2sk <= now`` and reads nothing that is not due. The Connection item is never written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from connection_repair.adapters.dynamodb.errors import failed_condition, is_conditional_failure
from connection_repair.adapters.dynamodb.keys import customer_partition, from_item, serialize
from connection_repair.notify.ports import ClaimConflict
from connection_repair.notify.records import ClaimRecord, CustomerNotifyState, EpisodeNotice, MessageClaim
from connection_repair.platform.aws import cancellation_reasons
from connection_repair.platform.clock import utc_stamp

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef
else:
    DynamoDBClient = Any


DUE_INDEX = "gsi2"
# The due list is partitioned by the UTC day a message is due: no partition grows without bound, and a sweep reads
# today's partition up to now plus yesterday's (what was due late yesterday). A failed delivery is re-keyed to
# "due now", so it moves into today's partition and is never left behind (docs/decisions.md §20).
DUE_PARTITION_PREFIX = "NOTIFY_DUE#"
LOOKBACK_DAYS = 1
EPISODE_PREFIX = "NOTIFY#EPISODE#"
CUSTOMER_SK = "NOTIFY#CUSTOMER"
# Notification items outlive their episode by this long (TTL), for support questions ("was I told?").
RETENTION = timedelta(days=180)


def episode_key(customer: str, episode_id: str) -> dict[str, Any]:
    return {"pk": customer_partition(customer), "sk": {"S": f"{EPISODE_PREFIX}{episode_id}"}}


def claim_key(customer: str, episode_id: str, number: int) -> dict[str, Any]:
    return {"pk": customer_partition(customer), "sk": {"S": f"NOTIFY#MSG#{episode_id}#{number}"}}


def customer_key(customer: str) -> dict[str, Any]:
    return {"pk": customer_partition(customer), "sk": {"S": CUSTOMER_SK}}


def _expires(moment: datetime) -> dict[str, Any]:
    return {"N": str(int((moment + RETENTION).timestamp()))}


def due_partition(due_at: datetime) -> str:
    return f"{DUE_PARTITION_PREFIX}{due_at.astimezone(UTC):%Y-%m-%d}"


def due_key(due_at: datetime, episode_id: str) -> str:
    return f"{utc_stamp(due_at)}#{episode_id}"


def episode_item(notice: EpisodeNotice) -> dict[str, Any]:
    # ``closed`` is written only by close_episode: its absence is what "open" means in every condition.
    values: dict[str, Any] = notice.model_dump(mode="json", exclude_none=True, exclude={"closed", "resolution"})
    item: dict[str, Any] = {name: serialize(value) for name, value in values.items()}
    item |= episode_key(notice.external_customer_id, notice.episode_id)
    item["expiresAt"] = _expires(notice.attention_since)
    if notice.due_at is not None:
        item["dueAt"] = {"S": utc_stamp(notice.due_at)}
        item["gsi2pk"] = {"S": due_partition(notice.due_at)}
        item["gsi2sk"] = {"S": due_key(notice.due_at, notice.episode_id)}
    return item


def notice_from_item(item: dict[str, Any]) -> EpisodeNotice:
    return EpisodeNotice.model_validate(from_item(item))


class DynamoDBNotificationStore:
    def __init__(self, client: DynamoDBClient, table_name: str, *, lookback_days: int = LOOKBACK_DAYS) -> None:
        self._client = client
        self._table = table_name
        self._lookback_days = lookback_days
        # Items the last ``due_episodes`` call read from the index (ScannedCount), for the sweep's metric and bench.
        self.last_read_count = 0

    def register_episode(self, notice: EpisodeNotice) -> bool:
        try:
            self._client.put_item(
                TableName=self._table, Item=episode_item(notice), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True

    def close_episode(
        self, external_customer_id: str, episode_id: str, *, resolution: str, now: datetime, connection_id: str
    ) -> int | None:
        # Upsert: a tombstone when the needs-attention event has not arrived (yet), so that it registers nothing.
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=episode_key(external_customer_id, episode_id),
                UpdateExpression=(
                    "SET closed = :true, resolution = :resolution, closedAt = :now, episodeId = :episode, "
                    "connectionId = :connection, expiresAt = :expires REMOVE dueAt, gsi2pk, gsi2sk"
                ),
                ConditionExpression="attribute_not_exists(closed)",
                ExpressionAttributeValues={
                    ":true": {"BOOL": True},
                    ":resolution": {"S": resolution},
                    ":now": {"S": utc_stamp(now)},
                    ":episode": {"S": episode_id},
                    ":connection": {"S": connection_id},
                    ":expires": _expires(now),
                },
                ReturnValues="ALL_OLD",
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return None
            raise
        old = response.get("Attributes", {})
        return int(old["remindersSent"]["N"]) if "remindersSent" in old else 0

    def customer_episodes(self, external_customer_id: str) -> list[EpisodeNotice]:
        notices: list[EpisodeNotice] = []
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "FilterExpression": "attribute_not_exists(closed)",
            "ExpressionAttributeValues": {
                ":pk": customer_partition(external_customer_id),
                ":prefix": {"S": EPISODE_PREFIX},
            },
            "ConsistentRead": True,
        }
        while True:
            response = self._client.query(**query)
            notices.extend(notice_from_item(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return notices
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def due_episodes(self, now: datetime, *, limit: int) -> list[EpisodeNotice]:
        notices: list[EpisodeNotice] = []
        self.last_read_count = 0
        # Oldest first: overdue messages (a failed delivery) before today's.
        for days_back in range(self._lookback_days, -1, -1):
            partition = due_partition(now - timedelta(days=days_back))
            query: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": DUE_INDEX,
                # '~' sorts after '#': every key due at or before now, whatever the episode id.
                "KeyConditionExpression": "gsi2pk = :due AND gsi2sk <= :now",
                "ExpressionAttributeValues": {":due": {"S": partition}, ":now": {"S": f"{utc_stamp(now)}~"}},
            }
            while len(notices) < limit:
                query["Limit"] = limit - len(notices)
                response = self._client.query(**query)
                self.last_read_count += response.get("ScannedCount", 0)
                notices.extend(notice_from_item(item) for item in response.get("Items", []))
                if "LastEvaluatedKey" not in response:
                    break
                query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return notices

    def get_customer_state(self, external_customer_id: str) -> CustomerNotifyState:
        response = self._client.get_item(
            TableName=self._table, Key=customer_key(external_customer_id), ConsistentRead=True
        )
        item = response.get("Item") or {}
        last = item.get("lastSentAt", {}).get("S")
        return CustomerNotifyState(last_sent_at=datetime.fromisoformat(last) if last else None)

    def defer(self, notice: EpisodeNotice, due_at: datetime) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=episode_key(notice.external_customer_id, notice.episode_id),
                UpdateExpression="SET dueAt = :due, gsi2pk = :partition, gsi2sk = :sort",
                ConditionExpression="nextMessage = :number AND attribute_not_exists(closed)",
                ExpressionAttributeValues={
                    ":due": {"S": utc_stamp(due_at)},
                    ":partition": {"S": due_partition(due_at)},
                    ":sort": {"S": due_key(due_at, notice.episode_id)},
                    ":number": {"N": str(notice.next_message)},
                },
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise

    def claim(
        self,
        external_customer_id: str,
        claims: Sequence[MessageClaim],
        *,
        token: str,
        now: datetime,
        previous_sent_at: datetime | None,
        lease_until: datetime,
    ) -> None:
        slot: dict[str, Any] = {
            "TableName": self._table,
            "Key": customer_key(external_customer_id),
            "ExpressionAttributeValues": {":now": {"S": utc_stamp(now)}, ":token": {"S": token}},
        }
        if previous_sent_at is None:
            slot["UpdateExpression"] = "SET lastSentAt = :now, claimToken = :token REMOVE previousSentAt"
            slot["ConditionExpression"] = "attribute_not_exists(lastSentAt)"
        else:
            slot["UpdateExpression"] = "SET lastSentAt = :now, claimToken = :token, previousSentAt = :previous"
            slot["ConditionExpression"] = "lastSentAt = :previous"
            slot["ExpressionAttributeValues"][":previous"] = {"S": utc_stamp(previous_sent_at)}
        items: list[dict[str, Any]] = [{"Update": slot}]
        for claim in claims:
            item = claim_key(external_customer_id, claim.episode_id, claim.number) | {
                "state": {"S": "CLAIMED"},
                "token": {"S": token},
                "claimedAt": {"S": utc_stamp(now)},
                "leaseUntil": {"S": utc_stamp(lease_until)},
                "expiresAt": _expires(now),
            }
            items.append(
                {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
            )
        try:
            self._client.transact_write_items(TransactItems=cast("list[TransactWriteItemTypeDef]", items))
        except ClientError as error:
            reasons = cancellation_reasons(error)
            if reasons is None:
                raise
            if failed_condition(reasons, 0):
                raise ClaimConflict(customer_slot_taken=True) from None
            taken = [
                (claim.episode_id, claim.number)
                for index, claim in enumerate(claims, start=1)
                if failed_condition(reasons, index)
            ]
            if not taken:
                raise
            raise ClaimConflict(customer_slot_taken=False, taken=taken) from None

    def release_claims(self, external_customer_id: str, claims: Sequence[MessageClaim]) -> None:
        for claim in claims:
            try:
                self._client.delete_item(
                    TableName=self._table,
                    Key=claim_key(external_customer_id, claim.episode_id, claim.number),
                    ConditionExpression="#state = :claimed",
                    ExpressionAttributeNames={"#state": "state"},
                    ExpressionAttributeValues={":claimed": {"S": "CLAIMED"}},
                )
            except ClientError as error:
                if not is_conditional_failure(error):
                    raise

    def release_slot(self, external_customer_id: str, token: str, previous_sent_at: datetime | None) -> None:
        values: dict[str, Any] = {":token": {"S": token}}
        if previous_sent_at is None:
            expression = "REMOVE lastSentAt, claimToken, previousSentAt"
        else:
            expression = "SET lastSentAt = :previous REMOVE claimToken, previousSentAt"
            values[":previous"] = {"S": utc_stamp(previous_sent_at)}
        try:
            self._client.update_item(
                TableName=self._table,
                Key=customer_key(external_customer_id),
                UpdateExpression=expression,
                ConditionExpression="claimToken = :token",
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise

    def get_claim(self, external_customer_id: str, episode_id: str, number: int) -> ClaimRecord | None:
        response = self._client.get_item(
            TableName=self._table, Key=claim_key(external_customer_id, episode_id, number), ConsistentRead=True
        )
        item = response.get("Item")
        if not item:
            return None
        lease = item.get("leaseUntil", {}).get("S")
        return ClaimRecord(state=item["state"]["S"], lease_until=datetime.fromisoformat(lease) if lease else None)

    def advance(
        self, notice: EpisodeNotice, updated: EpisodeNotice, claims: Sequence[MessageClaim], now: datetime, state: str
    ) -> None:
        customer = notice.external_customer_id
        values: dict[str, Any] = {
            ":expected": {"N": str(notice.next_message)},
            ":next": {"N": str(updated.next_message)},
            ":sent": {"N": str(updated.messages_sent)},
            ":reminders": {"N": str(updated.reminders_sent)},
        }
        if updated.due_at is None:
            expression = "SET nextMessage = :next, messagesSent = :sent, remindersSent = :reminders"
            expression += " REMOVE dueAt, gsi2pk, gsi2sk"
        else:
            expression = (
                "SET nextMessage = :next, messagesSent = :sent, remindersSent = :reminders, "
                "dueAt = :due, gsi2pk = :partition, gsi2sk = :sort"
            )
            values |= {
                ":due": {"S": utc_stamp(updated.due_at)},
                ":partition": {"S": due_partition(updated.due_at)},
                ":sort": {"S": due_key(updated.due_at, notice.episode_id)},
            }
        episode_update: dict[str, Any] = {
            "TableName": self._table,
            "Key": episode_key(customer, notice.episode_id),
            "UpdateExpression": expression,
            "ConditionExpression": "nextMessage = :expected AND attribute_not_exists(closed)",
            "ExpressionAttributeValues": values,
        }
        claim_updates = [
            {
                "TableName": self._table,
                "Key": claim_key(customer, claim.episode_id, claim.number),
                "UpdateExpression": "SET #state = :state, doneAt = :now REMOVE leaseUntil",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {":state": {"S": state}, ":now": {"S": utc_stamp(now)}},
            }
            for claim in claims
        ]
        items = [{"Update": episode_update}] + [{"Update": update} for update in claim_updates]
        try:
            self._client.transact_write_items(TransactItems=cast("list[TransactWriteItemTypeDef]", items))
        except ClientError as error:
            reasons = cancellation_reasons(error)
            if reasons is None or not failed_condition(reasons, 0):
                raise
            # The episode moved on or closed meanwhile (repaired during the send): still record the claims' fate.
            for update in claim_updates:
                self._client.update_item(**cast("Any", update))
