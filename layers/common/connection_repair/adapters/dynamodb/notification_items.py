"""The notifier's items in the single table (docs/data-model.md, "Notification items"): keys and item shapes.

All of a customer's notification state lives in the customer's partition, next to their preferences:
episode state ``NOTIFY#EPISODE#<episodeId>``, message claims ``NOTIFY#MSG#<episodeId>#<n>`` and the customer's send
slot and unusable contacts ``NOTIFY#CUSTOMER``. Episodes with a message to send carry ``gsi2pk``/``gsi2sk`` (sparse
index ``gsi2``): the sweep queries ``gsi2sk <= now`` and reads nothing that is not due.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from connection_repair.adapters.dynamodb.keys import SHARDS, customer_partition, from_item, serialize, shard_of, to_item
from connection_repair.notify.records import EpisodeNotice, MessageClaim
from connection_repair.platform.clock import utc_stamp

DUE_INDEX = "gsi2"
# The due list is partitioned by the UTC day a message is due (and sharded within it): no partition grows without
# bound, none takes a whole burst of writes. The notifier never
# writes a due time before its own "now", so a past day only empties; the sweep reads every day from the oldest that
# still held a due message (the watermark item) up to now, and so leaves nothing behind (docs/decisions.md §20).
DUE_PARTITION_PREFIX = "NOTIFY_DUE#"
SWEEP_WATERMARK_KEY = {"pk": {"S": "NOTIFY_SWEEP"}, "sk": {"S": "DUE_FROM"}}
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


def expires_at(moment: datetime) -> dict[str, Any]:
    return {"N": str(int((moment + RETENTION).timestamp()))}


def due_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def due_partition(due_at: datetime, episode_id: str) -> str:
    """The day's shard an episode's message is listed in while due: a burst of breaks (a bank's outage) due at once
    is spread over ``SHARDS`` partitions, not written to one."""
    return f"{DUE_PARTITION_PREFIX}{due_day(due_at):%Y-%m-%d}#{shard_of(episode_id)}"


def due_partitions(day: date) -> list[str]:
    """Every partition a message due on ``day`` can be in: its shards, and the day's unsharded partition, where a
    version before the shards listed it."""
    return [f"{DUE_PARTITION_PREFIX}{day:%Y-%m-%d}"] + [
        f"{DUE_PARTITION_PREFIX}{day:%Y-%m-%d}#{shard}" for shard in range(SHARDS)
    ]


def due_key(due_at: datetime, episode_id: str) -> str:
    return f"{utc_stamp(due_at)}#{episode_id}"


def episode_item(notice: EpisodeNotice) -> dict[str, Any]:
    # ``closed`` (and the resolution) is written only by close_episode: its absence is what "open" means in every
    # condition.
    item = to_item(notice.model_dump(mode="json", exclude={"closed"}))
    item |= episode_key(notice.external_customer_id, notice.episode_id)
    item["expiresAt"] = expires_at(notice.attention_since)
    if notice.due_at is not None:
        item["dueAt"] = {"S": utc_stamp(notice.due_at)}
        item["gsi2pk"] = {"S": due_partition(notice.due_at, notice.episode_id)}
        item["gsi2sk"] = {"S": due_key(notice.due_at, notice.episode_id)}
    return item


def notice_from_item(item: dict[str, Any]) -> EpisodeNotice:
    return EpisodeNotice.model_validate(from_item(item))


def slot_claim(
    table: str, customer: str, token: str, now: datetime, previous_sent_at: datetime | None
) -> dict[str, Any]:
    """The update that takes the customer's send slot: only if their last send is still ``previous_sent_at``."""
    slot: dict[str, Any] = {
        "TableName": table,
        "Key": customer_key(customer),
        "ExpressionAttributeValues": {":now": {"S": utc_stamp(now)}, ":token": {"S": token}},
    }
    if previous_sent_at is None:
        slot["UpdateExpression"] = "SET lastSentAt = :now, claimToken = :token REMOVE previousSentAt"
        slot["ConditionExpression"] = "attribute_not_exists(lastSentAt)"
    else:
        slot["UpdateExpression"] = "SET lastSentAt = :now, claimToken = :token, previousSentAt = :previous"
        slot["ConditionExpression"] = "lastSentAt = :previous"
        slot["ExpressionAttributeValues"][":previous"] = {"S": utc_stamp(previous_sent_at)}
    return slot


def claim_item(customer: str, claim: MessageClaim, token: str, now: datetime, lease_until: datetime) -> dict[str, Any]:
    return claim_key(customer, claim.episode_id, claim.number) | {
        "state": {"S": "CLAIMED"},
        "token": {"S": token},
        "claimedAt": {"S": utc_stamp(now)},
        "leaseUntil": {"S": utc_stamp(lease_until)},
        "expiresAt": expires_at(now),
    }


# A note on an episode's item for support (`make inspect`): why its message was deferred, or not sent. One per message
# and kind (the latest), so an episode's item stays small however often its message is deferred.
Note = tuple[str, dict[str, Any]] | None


def episode_note(kind: str, notice: EpisodeNotice, reason: str, at: datetime, until: datetime | None = None) -> Note:
    """The attribute name (``deferred#<message>`` / ``skipped#<message>``) and value of a note."""
    value = {"reason": reason, "at": utc_stamp(at)} | ({"until": utc_stamp(until)} if until else {})
    return f"{kind}#{notice.next_message}", serialize(value)
