"""The single table's keys and the conversion of values to and from its attribute format (docs/data-model.md)."""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from connection_repair.platform.clock import utc_stamp

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

CONNECTION_SK = "CONNECTION"
EVENT_SK = "EVENT"
PREFERENCES_SK = "PREFERENCES"
# A customer's connections, and a connection's events in time order.
GSI1 = "gsi1"
# Sparse work lists: what is due (the notifier's sweep), the connections with something open (reconciliation).
GSI2 = "gsi2"
# Open connections and pending outboxes are spread over this many partitions: a bank's outage opens thousands at once.
SHARDS = 8


def connection_key(connection_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"CONN#{connection_id}"}, "sk": {"S": CONNECTION_SK}}


def event_key(event_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"EVENT#{event_id}"}, "sk": {"S": EVENT_SK}}


def customer_partition(external_customer_id: str) -> dict[str, Any]:
    """The partition of everything kept per customer: preferences and notification state."""
    return {"S": f"CUST#{external_customer_id}"}


def preferences_key(external_customer_id: str) -> dict[str, Any]:
    return {"pk": customer_partition(external_customer_id), "sk": {"S": PREFERENCES_SK}}


def customer_index(external_customer_id: str, connection_id: str) -> dict[str, Any]:
    """GSI1 attributes that list a connection under its customer."""
    return {"gsi1pk": customer_partition(external_customer_id), "gsi1sk": {"S": f"CONN#{connection_id}"}}


def shard_of(key: str) -> int:
    return zlib.crc32(key.encode()) % SHARDS


def open_partition(shard: int) -> dict[str, Any]:
    return {"S": f"OPEN#{shard}"}


def open_index(connection_id: str) -> dict[str, Any]:
    """GSI2 attributes that list a connection with an open episode or a repair pending (sparse)."""
    return {"gsi2pk": open_partition(shard_of(connection_id)), "gsi2sk": {"S": f"CONN#{connection_id}"}}


def outbox_partition(shard: int) -> dict[str, Any]:
    return {"S": f"OUTBOX#{shard}"}


def outbox_index(event_id: str, received_at: datetime) -> dict[str, Any]:
    """GSI2 attributes that list a stored event whose outbox is not yet published (sparse), oldest first."""
    return {"gsi2pk": outbox_partition(shard_of(event_id)), "gsi2sk": {"S": f"{utc_stamp(received_at)}#{event_id}"}}


def serialize(value: Any) -> dict[str, Any]:
    return cast("dict[str, Any]", _serializer.serialize(value))


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {name: serialize(value) for name, value in values.items() if value is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def institution_partition(institution_id: str) -> dict[str, Any]:
    """The partition of what is kept per institution: its connection count, its break counts, its incident."""
    return {"S": f"INST#{institution_id}"}


def census_key(institution_id: str) -> dict[str, Any]:
    return {"pk": institution_partition(institution_id), "sk": {"S": "CENSUS"}}
