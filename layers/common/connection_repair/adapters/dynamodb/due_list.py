"""The notifier's due list (``gsi2``, ``NOTIFY_DUE#<day>#<shard>``): what is due now, from the oldest day that may
hold a message (docs/decisions.md §20)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from connection_repair.adapters.dynamodb.errors import is_conditional_failure
from connection_repair.adapters.dynamodb.notification_items import (
    DUE_INDEX,
    RETENTION,
    SWEEP_WATERMARK_KEY,
    due_day,
    due_partitions,
    notice_from_item,
)
from connection_repair.adapters.dynamodb.paging import query_items
from connection_repair.notify.records import EpisodeNotice
from connection_repair.platform.clock import utc_stamp

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any


class DueList:
    """The due list's reads and bookkeeping. ``read_count`` is what the last ``read`` read from the index
    (ScannedCount).

    The watermark item (``NOTIFY_SWEEP`` / ``DUE_FROM``) holds ``day``, the oldest day that may hold a due message,
    and ``shardedFrom``, the oldest day a message was ever listed in a day's shards: before it only the day's unsharded
    partition (where versions before the shards listed messages) can hold one, so a sweep reading far back costs one
    query a day there, not one per shard.
    """

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name
        self.read_count = 0
        # The oldest shard day this process has recorded (it records again only for an earlier one).
        self._sharded_from: date | None = None

    def listing(self, due_at: datetime) -> None:
        """Record, before a message due at ``due_at`` is listed in its shard, that shards are in use from its day."""
        day = due_day(due_at)
        if self._sharded_from is not None and self._sharded_from <= day:
            return
        try:
            self._client.update_item(
                TableName=self._table,
                Key=SWEEP_WATERMARK_KEY,
                UpdateExpression="SET shardedFrom = :day",
                ConditionExpression="attribute_not_exists(shardedFrom) OR shardedFrom > :day",
                ExpressionAttributeValues={":day": {"S": day.isoformat()}},
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
        self._sharded_from = day

    def read(self, now: datetime, *, limit: int) -> list[EpisodeNotice]:
        notices: list[EpisodeNotice] = []
        self.read_count = 0
        today = due_day(now)
        start, sharded_from = self._watermark(now)
        day = start
        oldest_with_items: date | None = None
        # Oldest day first: overdue messages (an outage, a failed delivery) before today's. Within a day the shards
        # are read in turn and what was read is put in due order; a day holding more than one sweep takes is drained
        # shard by shard, the rest staying due for the next sweep.
        while day <= today and len(notices) < limit:
            sharded = sharded_from is not None and day >= sharded_from
            found: list[EpisodeNotice] = []
            for partition in due_partitions(day) if sharded else due_partitions(day)[:1]:
                found.extend(self._due_in(partition, now, limit - len(notices) - len(found)))
            if found and oldest_with_items is None:
                oldest_with_items = day
            notices.extend(sorted(found, key=lambda notice: (notice.due_at or now, notice.episode_id)))
            day += timedelta(days=1)
        # What was read may stay due (a sweep short of time): the next sweep starts at the oldest day that had some.
        watermark = oldest_with_items or today
        if watermark != start:
            self._client.update_item(
                TableName=self._table,
                Key=SWEEP_WATERMARK_KEY,
                UpdateExpression="SET #day = :day",
                ExpressionAttributeNames={"#day": "day"},
                ExpressionAttributeValues={":day": {"S": watermark.isoformat()}},
            )
        return notices

    def due_exactly(self, moment: datetime) -> list[EpisodeNotice]:
        """Every notice listed as due at exactly ``moment`` (its day's shards, a key prefix: nothing else is read)."""
        found: list[EpisodeNotice] = []
        for partition in due_partitions(due_day(moment)):
            query: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": DUE_INDEX,
                "KeyConditionExpression": "gsi2pk = :due AND begins_with(gsi2sk, :at)",
                "ExpressionAttributeValues": {":due": {"S": partition}, ":at": {"S": f"{utc_stamp(moment)}#"}},
            }
            found.extend(notice_from_item(item) for item in query_items(self._client, query))
        return found

    def _due_in(self, partition: str, now: datetime, limit: int) -> list[EpisodeNotice]:
        """Up to ``limit`` notices of one due partition whose time has come, oldest first (none asked: none read)."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": DUE_INDEX,
            # '~' sorts after '#': every key due at or before now, whatever the episode id.
            "KeyConditionExpression": "gsi2pk = :due AND gsi2sk <= :now",
            "ExpressionAttributeValues": {":due": {"S": partition}, ":now": {"S": f"{utc_stamp(now)}~"}},
            "Limit": limit,
        }
        # A page cut short at 1 MB is followed by the next; no page is asked for once ``limit`` items are read (with
        # none asked for, not even the first).
        items = list(islice(query_items(self._client, query), limit))
        self.read_count += len(items)
        return [notice_from_item(item) for item in items]

    def _watermark(self, now: datetime) -> tuple[date, date | None]:
        """The oldest day that may hold a due message (every day before it is empty for good), and the oldest day a
        shard may hold one (None: no message was ever listed in a shard)."""
        item = self._client.get_item(TableName=self._table, Key=SWEEP_WATERMARK_KEY, ConsistentRead=True).get("Item")
        item = item or {}
        start = date.fromisoformat(item["day"]["S"]) if "day" in item else due_day(now - RETENTION)
        sharded_from = date.fromisoformat(item["shardedFrom"]["S"]) if "shardedFrom" in item else None
        return start, sharded_from
