"""The connection store on moto: paging a customer's connections, optimistic writes, and the outbox's lease."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from connection_repair.adapters.dynamodb.connection_store import DynamoDBConnectionStore
from connection_repair.adapters.dynamodb.connections import MAX_LISTED_CONNECTIONS, DynamoDBCustomerConnections
from connection_repair.adapters.dynamodb.events import DynamoDBOutboxStore
from connection_repair.adapters.dynamodb.incidents import DynamoDBIncidentStore
from connection_repair.adapters.dynamodb.keys import SHARDS, connection_key
from connection_repair.adapters.dynamodb.reconciliation import DynamoDBKnownConnections
from connection_repair.domain.bus_events import ConnectionNeedsAttention
from connection_repair.domain.connection import Connection, ConnectionChange
from connection_repair.domain.errors import ConcurrentUpdate, DuplicateEvent
from connection_repair.domain.status_policy import Action
from connection_repair.domain.transitions import silent_update
from connection_repair.outbox.outbox import Outbox
from connection_repair.outbox.ports import StoredEvent
from local.aws_resources import LocalResources
from tests.support import put_connections

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def connections(aws: LocalResources) -> DynamoDBCustomerConnections:
    return DynamoDBCustomerConnections(boto3.client("dynamodb"), aws.table_name)


@pytest.fixture
def store(aws: LocalResources) -> DynamoDBConnectionStore:
    return DynamoDBConnectionStore(boto3.client("dynamodb"), aws.table_name, event_ttl=timedelta(days=90))


def connection(connection_id: str, customer: str = "customer-1", version: int = 1) -> Connection:
    return Connection(connection_id=connection_id, external_customer_id=customer, status="ACTIVE", version=version)


def status_event(event_id: str, *, at: datetime = NOW, pending: list[Any] | None = None) -> StoredEvent:
    """A status change of conn-1 as ingestion stores it, received at NOW."""
    return StoredEvent(
        event_id=event_id,
        event_type="BANK_LINKING_CONNECTION_STATUS_CHANGE",
        event_time=at,
        connection_id="conn-1",
        received_at=NOW,
        retry_count=0,
        raw_body="{}",
        pending=pending or [],
    )


def pages_of(connections: DynamoDBCustomerConnections, size: int) -> None:
    """DynamoDB ends a query's page at 1 MB; a Limit set on the wire stands for that here."""

    def limit(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = size

    connections._client.meta.events.register("provide-client-params.dynamodb.Query", limit)


def test_a_customers_connections_are_read_across_pages(connections: DynamoDBCustomerConnections) -> None:
    for number in range(7):
        connections.save_connection(connection(f"conn-{number}"), expected_version=None)
    connections.save_connection(connection("theirs", customer="customer-2"), expected_version=None)
    pages_of(connections, 3)
    listed = connections.list_connections("customer-1")
    assert sorted(c.connection_id for c in listed) == [f"conn-{number}" for number in range(7)]


def test_the_list_stops_at_its_bound(connections: DynamoDBCustomerConnections) -> None:
    put_connections(
        connections._client,
        connections._table,
        [connection(f"conn-{number:03d}") for number in range(MAX_LISTED_CONNECTIONS + 5)],
    )
    pages_of(connections, 50)
    listed = connections.list_connections("customer-1")
    assert len(listed) == len({c.connection_id for c in listed}) == MAX_LISTED_CONNECTIONS


def test_a_write_against_a_changed_version_is_a_concurrent_update(connections: DynamoDBCustomerConnections) -> None:
    connections.save_connection(connection("conn-1"), expected_version=None)
    with pytest.raises(ConcurrentUpdate, match=r"^conn-1$"):
        connections.save_connection(connection("conn-1", version=2), expected_version=None)  # it exists already
    connections.save_connection(connection("conn-1", version=2), expected_version=1)
    with pytest.raises(ConcurrentUpdate, match=r"^conn-1$"):
        connections.save_connection(connection("conn-1", version=3), expected_version=1)  # someone wrote version 2
    stored = connections.get_connection("conn-1")
    assert stored is not None
    assert stored.version == 2


def test_other_errors_of_a_write_are_not_mistaken_for_a_conflict(connections: DynamoDBCustomerConnections) -> None:
    connections._client.meta.events.register(
        "before-call.dynamodb.UpdateItem",
        lambda **_: (SimpleNamespace(status_code=400, headers={}), {"Error": {"Code": "ThrottlingException"}}),
    )
    with pytest.raises(ClientError, match="ThrottlingException"):
        connections.save_connection(connection("conn-1"), expected_version=None)


def pending_event(store: DynamoDBConnectionStore, lease_until: datetime) -> StoredEvent:
    announced = ConnectionNeedsAttention(
        connection_id="conn-1",
        external_customer_id="customer-1",
        institution_id="inst-1",
        institution_name="Chase",
        status="RECONNECT_REQUIRED",
        status_reason="LOGIN_REQUIRED",
        action=Action.REPAIR,
        episode_id="episode-1",
        event_time=NOW,
        attention_since=NOW,
    )
    event = status_event("evt-1", pending=[announced])
    store.save_event(event, lease_until=lease_until)
    return event


def test_taking_over_an_outbox_extends_its_lease_so_nobody_else_takes_it(store: DynamoDBConnectionStore) -> None:
    event = pending_event(store, lease_until=NOW - timedelta(seconds=1))
    assert store.get_event("evt-1") == event  # read back whole, its connection and outbox included
    later = NOW + timedelta(seconds=30)
    assert store.claim_pending("evt-1", now=NOW, lease_until=later) == event.pending
    # While the new holder publishes, a second delivery at the same moment finds the lease taken
    assert store.claim_pending("evt-1", now=NOW, lease_until=later) == []
    item = store._client.get_item(TableName=store._table, Key={"pk": {"S": "EVENT#evt-1"}, "sk": {"S": "EVENT"}})
    assert item["Item"]["leaseUntil"] == {"N": str(int(later.timestamp()))}
    # Once it has lapsed, it can be taken again
    assert store.claim_pending("evt-1", now=later + timedelta(seconds=1), lease_until=later + timedelta(minutes=1))


class Publisher:
    def __init__(self) -> None:
        self.published: list[Any] = []

    def publish(self, events: Any) -> None:
        self.published.extend(events)


def test_a_retry_waits_briefly_for_the_lease_holder_to_finish_instead_of_failing(
    store: DynamoDBConnectionStore,
) -> None:
    pending_event(store, lease_until=NOW + timedelta(seconds=15))
    moments = iter([0.0, 0.5])  # the holder clears the outbox during the first wait

    def sleep(_seconds: float) -> None:
        store.clear_pending("evt-1")

    publisher = Publisher()
    outbox = Outbox(store, publisher, clock=lambda: NOW, sleep=sleep, monotonic=lambda: next(moments))
    assert outbox.flush("evt-1") == 0
    assert publisher.published == []  # the holder published it, not us


def test_a_retry_gives_up_waiting_exactly_at_its_deadline(store: DynamoDBConnectionStore) -> None:
    from connection_repair.outbox.outbox import HOLDER_WAIT_SECONDS, DeliveryInProgress

    pending_event(store, lease_until=NOW + timedelta(seconds=15))
    moments = iter([0.0, HOLDER_WAIT_SECONDS - 0.01, HOLDER_WAIT_SECONDS, HOLDER_WAIT_SECONDS + 1])
    slept: list[float] = []
    outbox = Outbox(store, Publisher(), clock=lambda: NOW, sleep=slept.append, monotonic=lambda: next(moments))
    with pytest.raises(DeliveryInProgress, match=r"^evt-1$"):
        outbox.flush("evt-1")
    assert slept == [0.05]  # polled once, briefly, then gave up at the deadline


def test_whoever_takes_over_an_outbox_holds_it_while_publishing(store: DynamoDBConnectionStore) -> None:
    pending_event(store, lease_until=NOW - timedelta(seconds=1))
    seen_while_publishing: list[Any] = []

    class Watching(Publisher):
        def publish(self, events: Any) -> None:
            # Another delivery, at this very moment, must find the outbox taken
            seen_while_publishing.append(store.claim_pending("evt-1", now=NOW, lease_until=NOW + timedelta(seconds=9)))
            super().publish(events)

    publisher = Watching()
    assert Outbox(store, publisher, clock=lambda: NOW).flush("evt-1") == 1
    assert seen_while_publishing == [[]]
    assert len(publisher.published) == 1


def test_a_connections_events_are_listed_in_time_order_whatever_offset_and_precision_meld_stamped(
    store: DynamoDBConnectionStore,
) -> None:
    # Stamped with another offset, with and without fractions: 10:00:00.5Z, 10:30Z, 11:00Z (as 12:00+01:00), 11:15Z.
    stamps = {
        "evt-c": datetime(2026, 11, 25, 12, 0, tzinfo=timezone(timedelta(hours=1))),
        "evt-a": datetime(2026, 11, 25, 10, 0, 0, 500000, tzinfo=UTC),
        "evt-d": datetime(2026, 11, 25, 11, 15, tzinfo=UTC),
        "evt-b": datetime(2026, 11, 25, 10, 30, tzinfo=UTC),
    }
    for event_id, stamp in stamps.items():
        store.save_event(
            status_event(event_id, at=stamp),
            lease_until=NOW,
        )
    history = store._client.query(
        TableName=store._table,
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :connection AND begins_with(gsi1sk, :events)",
        ExpressionAttributeValues={":connection": {"S": "CONN#conn-1"}, ":events": {"S": "EVENT#"}},
    )["Items"]
    assert [item["eventId"]["S"] for item in history] == ["evt-a", "evt-b", "evt-c", "evt-d"]
    assert history[2]["gsi1sk"] == {"S": "EVENT#2026-11-25T11:00:00.000000Z#evt-c"}


def test_writing_a_connection_leaves_attributes_this_version_does_not_know(
    store: DynamoDBConnectionStore, connections: DynamoDBCustomerConnections
) -> None:
    # A newer version of the functions (a rolling deploy) stored an attribute this one has no field for
    connections.save_connection(connection("conn-1"), expected_version=None)
    key = {"pk": {"S": "CONN#conn-1"}, "sk": {"S": "CONNECTION"}}
    store._client.update_item(
        TableName=store._table,
        Key=key,
        UpdateExpression="SET riskScore = :score, institutionName = :name",
        ExpressionAttributeValues={":score": {"N": "7"}, ":name": {"S": "Chase"}},
    )
    current = connections.get_connection("conn-1")
    assert current is not None

    # This version writes the connection, by both write paths (the Repair API's and ingestion's)
    renamed = current.model_copy(update={"institution_name": None, "status": "RECONNECT_REQUIRED", "version": 2})
    connections.save_connection(renamed, expected_version=1)
    event = status_event("evt-1")
    store.save_event(event, lease_until=NOW, connection=renamed.model_copy(update={"version": 3}), expected_version=2)

    item = store._client.get_item(TableName=store._table, Key=key)["Item"]
    assert item["riskScore"] == {"N": "7"}  # kept
    assert "institutionName" not in item  # a field this version knows, without a value: removed, as a put would
    assert (item["status"], item["version"]) == ({"S": "RECONNECT_REQUIRED"}, {"N": "3"})
    assert connections.get_connection("conn-1") == renamed.model_copy(update={"version": 3})


def test_an_event_stored_twice_is_a_duplicate_named_by_its_id_whether_or_not_it_carries_a_connection(
    store: DynamoDBConnectionStore,
) -> None:
    event = status_event("evt-dup")
    store.save_event(event, lease_until=NOW, connection=connection("conn-1"), expected_version=None)
    with pytest.raises(DuplicateEvent, match=r"^evt-dup$"):
        store.save_event(event, lease_until=NOW, connection=connection("conn-1", version=2), expected_version=1)
    with pytest.raises(DuplicateEvent, match=r"^evt-dup$"):
        store.save_event(event, lease_until=NOW)


def test_the_outbox_store_alone_reads_takes_and_clears_an_outbox(aws: LocalResources) -> None:
    writer = DynamoDBConnectionStore(boto3.client("dynamodb"), aws.table_name, event_ttl=timedelta(days=90))
    event = pending_event(writer, lease_until=NOW - timedelta(seconds=1))
    outbox = DynamoDBOutboxStore(boto3.client("dynamodb"), aws.table_name)
    assert outbox.get_event("evt-1") == event
    assert outbox.claim_pending("evt-1", now=NOW, lease_until=NOW + timedelta(seconds=30)) == event.pending
    outbox.clear_pending("evt-1")
    assert outbox.get_event("evt-1").pending == []  # type: ignore[union-attr]


def test_a_stored_event_expires_its_retention_after_it_was_received_once_its_outbox_is_published(
    store: DynamoDBConnectionStore,
) -> None:
    event = pending_event(store, lease_until=NOW)
    key = {"pk": {"S": "EVENT#evt-1"}, "sk": {"S": "EVENT"}}
    pending = store._client.get_item(TableName=store._table, Key=key)["Item"]
    assert "expiresAt" not in pending  # an unpublished announcement never expires
    assert pending["gsi2pk"]["S"].startswith("OUTBOX#")

    store.clear_pending("evt-1")

    cleared = store._client.get_item(TableName=store._table, Key=key)["Item"]
    assert cleared["expiresAt"] == {"N": str(int((event.received_at + timedelta(days=90)).timestamp()))}
    assert not {"gsi2pk", "gsi2sk", "expiresOncePublished", "pending", "leaseUntil"} & cleared.keys()
    assert list(store.pending_outboxes()) == []

    # An event with nothing to publish expires from the start
    store.save_event(status_event("evt-2"), lease_until=NOW)
    quiet = store._client.get_item(TableName=store._table, Key={"pk": {"S": "EVENT#evt-2"}, "sk": {"S": "EVENT"}})
    assert quiet["Item"]["expiresAt"] == {"N": str(int((NOW + timedelta(days=90)).timestamp()))}


def test_an_outbox_stored_by_an_earlier_version_keeps_its_expiry_when_cleared(store: DynamoDBConnectionStore) -> None:
    event = pending_event(store, lease_until=NOW)
    key = {"pk": {"S": "EVENT#evt-1"}, "sk": {"S": "EVENT"}}
    store._client.update_item(
        TableName=store._table,
        Key=key,
        UpdateExpression="SET expiresAt = :e REMOVE expiresOncePublished",
        ExpressionAttributeValues={":e": {"N": "1234"}},
    )

    store.clear_pending(event.event_id)

    assert store._client.get_item(TableName=store._table, Key=key)["Item"]["expiresAt"] == {"N": "1234"}


def test_a_silent_update_needs_its_connection_and_is_a_duplicate_the_second_time(
    store: DynamoDBConnectionStore, connections: DynamoDBCustomerConnections
) -> None:
    connections.save_connection(connection("conn-1"), expected_version=None)
    event = status_event("evt-silent")
    change = silent_update(
        ConnectionChange(connection_id="conn-1", status="ACTIVE"), event_id="evt-silent", event_time=NOW
    )
    store.save_silent_update(event, change)
    with pytest.raises(DuplicateEvent, match=r"^evt-silent$"):
        store.save_silent_update(event, change)
    with pytest.raises(ValueError, match=r"^a silent update needs the event's connection$"):
        store.save_silent_update(event.model_copy(update={"connection_id": None}), change)


def test_connections_with_an_episode_open_or_a_repair_pending_are_indexed_while_they_are(
    aws: LocalResources, connections: DynamoDBCustomerConnections
) -> None:
    known = DynamoDBKnownConnections(boto3.client("dynamodb"), aws.table_name)
    fine = connection("conn-fine")
    broken = connection("conn-broken").model_copy(update={"episode_id": "ep-1", "attention_since": NOW})
    pending = connection("conn-pending").model_copy(update={"repair_pending": True})
    for each in (fine, broken, pending):
        connections.save_connection(each, expected_version=None)

    assert sorted(c.connection_id for _, c in known.open_connections(None)) == ["conn-broken", "conn-pending"]

    repaired = broken.model_copy(update={"episode_id": None, "attention_since": None, "version": 2})
    connections.save_connection(repaired, expected_version=1)
    item = boto3.client("dynamodb").get_item(TableName=aws.table_name, Key=connection_key("conn-broken"))["Item"]
    assert not {"gsi2pk", "gsi2sk"} & item.keys()
    assert [c.connection_id for _, c in known.open_connections(None)] == ["conn-pending"]


def test_the_open_connections_resume_after_any_cursor_each_exactly_once(
    aws: LocalResources, connections: DynamoDBCustomerConnections
) -> None:
    known = DynamoDBKnownConnections(boto3.client("dynamodb"), aws.table_name)
    ids = [f"conn-{n:02d}" for n in range(40)]  # spread over every shard
    for connection_id in ids:
        connections.save_connection(
            connection(connection_id).model_copy(update={"episode_id": "ep", "attention_since": NOW}),
            expected_version=None,
        )
    listed = list(known.open_connections(None))
    assert sorted(c.connection_id for _, c in listed) == ids
    assert len({cursor.partition("#")[0] for cursor, _ in listed}) == SHARDS

    for position in (0, 7, 23, 39):
        cursor = listed[position][0]
        rest = [c.connection_id for _, c in known.open_connections(cursor)]
        assert rest == [c.connection_id for _, c in listed[position + 1 :]]


def test_connections_are_read_in_batches_beyond_dynamodbs_limit(
    aws: LocalResources, connections: DynamoDBCustomerConnections
) -> None:
    known = DynamoDBKnownConnections(boto3.client("dynamodb"), aws.table_name)
    ids = [f"conn-{n:03d}" for n in range(130)]
    for connection_id in ids[:120]:
        connections.save_connection(connection(connection_id), expected_version=None)

    found = known.get_connections([*ids, ids[0]])

    assert sorted(found) == ids[:120]


def test_a_connection_counts_in_its_institutions_census_once_when_first_stored(store: DynamoDBConnectionStore) -> None:
    census = DynamoDBIncidentStore(store._client, store._table)
    first = Connection(connection_id="conn-1", institution_id="ins-chase", status="ACTIVE", version=1)
    store.save_event(status_event("evt-1"), lease_until=NOW, connection=first, expected_version=None)
    later = first.model_copy(update={"status": "RECONNECT_REQUIRED", "version": 2})
    store.save_event(status_event("evt-2"), lease_until=NOW, connection=later, expected_version=1)
    healed = later.model_copy(update={"status": "ACTIVE", "version": 3})
    store.save_event(status_event("evt-4"), lease_until=NOW, connection=healed, expected_version=2)
    unnamed = Connection(connection_id="conn-2", status="ACTIVE", version=1)
    store.save_event(status_event("evt-3"), lease_until=NOW, connection=unnamed, expected_version=None)
    assert (census.connections("ins-chase"), census.connections("ins-other")) == (1, 0)
