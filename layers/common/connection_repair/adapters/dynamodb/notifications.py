"""The notifier's state in the single table: ``NotificationStore`` (the items: ``notification_items``).

Transactions carry a ``ClientRequestToken`` of their own, which botocore's retries of that call reuse: a retry after
a commit whose answer was lost is answered as the commit was, instead of meeting its own write. The Connection item
is never written here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from connection_repair.adapters.dynamodb.due_list import DueList
from connection_repair.adapters.dynamodb.errors import failed_condition, is_conditional_failure
from connection_repair.adapters.dynamodb.keys import customer_partition
from connection_repair.adapters.dynamodb.notification_items import (
    EPISODE_PREFIX,
    Note,
    claim_item,
    claim_key,
    customer_key,
    due_key,
    due_partition,
    episode_item,
    episode_key,
    episode_note,
    expires_at,
    notice_from_item,
    slot_claim,
)
from connection_repair.adapters.dynamodb.paging import query_items
from connection_repair.notify.ports import ClaimConflict
from connection_repair.notify.records import ClaimRecord, CustomerNotifyState, EpisodeNotice, MessageClaim
from connection_repair.platform.aws import cancellation_reasons
from connection_repair.platform.clock import utc_stamp
from connection_repair.preferences.model import Channel

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef
else:
    DynamoDBClient = Any


class DynamoDBNotificationStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name
        self._due = DueList(client, table_name)

    @property
    def last_read_count(self) -> int:
        """Items the last ``due_episodes`` call read from the index, for the sweep's metric and bench."""
        return self._due.read_count

    def register_episode(self, notice: EpisodeNotice) -> bool:
        if notice.due_at is not None:
            self._due.listing(notice.due_at)
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
                    ":expires": expires_at(now),
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
        return [notice_from_item(item) for item in query_items(self._client, query)]

    def due_episodes(self, now: datetime, *, limit: int) -> list[EpisodeNotice]:
        return self._due.read(now, limit=limit)

    def due_exactly(self, moment: datetime) -> list[EpisodeNotice]:
        return self._due.due_exactly(moment)

    def get_customer_state(self, external_customer_id: str) -> CustomerNotifyState:
        response = self._client.get_item(
            TableName=self._table, Key=customer_key(external_customer_id), ConsistentRead=True
        )
        item = response.get("Item") or {}
        last = item.get("lastSentAt", {}).get("S")
        unusable = {
            channel: item[f"unusable{channel.value}"]["M"]["address"]["S"]
            for channel in Channel
            if f"unusable{channel.value}" in item
        }
        return CustomerNotifyState(last_sent_at=datetime.fromisoformat(last) if last else None, unusable=unusable)

    def mark_unusable(
        self, external_customer_id: str, channel: Channel, address: str, *, reason: str, now: datetime
    ) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=customer_key(external_customer_id),
            UpdateExpression="SET #contact = :contact",
            ExpressionAttributeNames={"#contact": f"unusable{channel.value}"},
            ExpressionAttributeValues={
                ":contact": {"M": {"address": {"S": address}, "reason": {"S": reason}, "at": {"S": utc_stamp(now)}}}
            },
        )

    def defer(
        self, notice: EpisodeNotice, due_at: datetime, *, reason: str | None = None, now: datetime | None = None
    ) -> None:
        if reason and now is None:
            raise ValueError("a deferral's reason is noted with when it was decided")
        note = episode_note("deferred", notice, reason, now, until=due_at) if reason and now else None
        self._move(notice, due_at, attempts=None, note=note)

    def hold(self, notice: EpisodeNotice, until: datetime, now: datetime) -> None:
        self._move(
            notice, until, attempts=None, held=True, note=episode_note("deferred", notice, "INCIDENT", now, until)
        )

    def back_off(self, notice: EpisodeNotice, due_at: datetime) -> None:
        self._move(notice, due_at, attempts=notice.delivery_attempts + 1)

    def _move(
        self, notice: EpisodeNotice, due_at: datetime, *, attempts: int | None, held: bool = False, note: Note = None
    ) -> None:
        self._due.listing(due_at)
        values: dict[str, Any] = {
            ":due": {"S": utc_stamp(due_at)},
            ":partition": {"S": due_partition(due_at, notice.episode_id)},
            ":sort": {"S": due_key(due_at, notice.episode_id)},
            ":number": {"N": str(notice.next_message)},
        }
        expression = "SET dueAt = :due, gsi2pk = :partition, gsi2sk = :sort"
        if attempts is not None:
            expression += ", deliveryAttempts = :attempts"
            values[":attempts"] = {"N": str(attempts)}
        if held:
            expression += ", heldByIncident = :held"
            values[":held"] = {"BOOL": True}
        if note:
            expression += ", #note = :note"
            values[":note"] = note[1]
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": episode_key(notice.external_customer_id, notice.episode_id),
            "UpdateExpression": expression,
            "ConditionExpression": "nextMessage = :number AND attribute_not_exists(closed)",
            "ExpressionAttributeValues": values,
            **({"ExpressionAttributeNames": {"#note": note[0]}} if note else {}),
        }
        try:
            self._client.update_item(**cast("Any", request))
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
        slot = slot_claim(self._table, external_customer_id, token, now, previous_sent_at)
        items: list[dict[str, Any]] = [{"Update": slot}]
        items += [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": claim_item(external_customer_id, claim, token, now, lease_until),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for claim in claims
        ]
        try:
            self._client.transact_write_items(
                TransactItems=cast("list[TransactWriteItemTypeDef]", items), ClientRequestToken=uuid.uuid4().hex
            )
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
        self,
        notice: EpisodeNotice,
        updated: EpisodeNotice,
        claims: Sequence[MessageClaim],
        now: datetime,
        state: str,
        *,
        message_ids: Mapping[str, str] | None = None,
        skipped: str | None = None,
    ) -> None:
        customer = notice.external_customer_id
        values: dict[str, Any] = {
            ":expected": {"N": str(notice.next_message)},
            ":next": {"N": str(updated.next_message)},
            ":sent": {"N": str(updated.messages_sent)},
            ":reminders": {"N": str(updated.reminders_sent)},
        }
        progress = "SET nextMessage = :next, messagesSent = :sent, remindersSent = :reminders, deliveryAttempts = :zero"
        values[":zero"] = {"N": "0"}
        note = episode_note("skipped", notice, skipped, now) if skipped else None
        if note:
            progress += ", #note = :note"
            values[":note"] = note[1]
        if updated.due_at is None:
            expression = f"{progress} REMOVE dueAt, gsi2pk, gsi2sk"
        else:
            self._due.listing(updated.due_at)
            expression = f"{progress}, dueAt = :due, gsi2pk = :partition, gsi2sk = :sort"
            values |= {
                ":due": {"S": utc_stamp(updated.due_at)},
                ":partition": {"S": due_partition(updated.due_at, notice.episode_id)},
                ":sort": {"S": due_key(updated.due_at, notice.episode_id)},
            }
        episode_update: dict[str, Any] = {
            "TableName": self._table,
            "Key": episode_key(customer, notice.episode_id),
            "UpdateExpression": expression,
            "ConditionExpression": "nextMessage = :expected AND attribute_not_exists(closed)",
            "ExpressionAttributeValues": values,
            **({"ExpressionAttributeNames": {"#note": note[0]}} if note else {}),
        }
        done = "SET #state = :state, doneAt = :now"
        done_values: dict[str, Any] = {":state": {"S": state}, ":now": {"S": utc_stamp(now)}}
        if message_ids:
            done += ", messageIds = :ids"
            done_values[":ids"] = {"M": {channel: {"S": sent} for channel, sent in message_ids.items()}}
        claim_updates = [
            {
                "TableName": self._table,
                "Key": claim_key(customer, claim.episode_id, claim.number),
                "UpdateExpression": f"{done} REMOVE leaseUntil",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": done_values,
            }
            for claim in claims
        ]
        items = [{"Update": episode_update}] + [{"Update": update} for update in claim_updates]
        try:
            self._client.transact_write_items(
                TransactItems=cast("list[TransactWriteItemTypeDef]", items), ClientRequestToken=uuid.uuid4().hex
            )
        except ClientError as error:
            reasons = cancellation_reasons(error)
            if reasons is None or not failed_condition(reasons, 0):
                raise
            # The episode moved on or closed meanwhile (repaired during the send): still record the claims' fate.
            for update in claim_updates:
                self._client.update_item(**cast("Any", update))
