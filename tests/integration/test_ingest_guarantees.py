"""Exactly once, in order, attributed: the ingestion use case against moto's DynamoDB and EventBridge."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest

from connection_repair.adapters.dynamodb.connection_store import DynamoDBConnectionStore
from connection_repair.adapters.dynamodb.connections import DynamoDBCustomerConnections
from connection_repair.adapters.dynamodb.keys import event_key
from connection_repair.adapters.eventbridge import EventBridgePublisher
from connection_repair.adapters.meld.client import MeldClient
from connection_repair.adapters.meld.errors import MeldUnavailable
from connection_repair.adapters.meld.gateway import MeldConnectionDirectory
from connection_repair.domain.bus_events import AnyDownstreamEvent
from connection_repair.domain.errors import ConcurrentUpdate
from connection_repair.ingestion.ingest import EventIngestor
from connection_repair.ingestion.service import (
    IngestOutcome,
    PayloadTooLarge,
    VerificationPolicy,
    WebhookDelivery,
    WebhookIngestor,
)
from connection_repair.ingestion.webhook import InvalidWebhook
from connection_repair.outbox.outbox import DeliveryInProgress
from local.aws_resources import LocalResources
from local.make_events import LOCAL_WEBHOOK_SECRET, envelope
from tests.support import signed_delivery, status_change

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def make_ingestor(
    aws: LocalResources,
    meld: httpx.MockTransport | None = None,
    *,
    now: datetime = NOW,
    publisher: EventBridgePublisher | None = None,
    max_failed_repairs: int = 3,
) -> WebhookIngestor:
    def directory() -> MeldConnectionDirectory:
        transport = meld or httpx.MockTransport(lambda request: httpx.Response(500))
        return MeldConnectionDirectory(
            MeldClient("https://meld.test", lambda: "key", transport=transport, max_attempts=1)
        )

    return WebhookIngestor(
        policy=VerificationPolicy(
            url=None, secrets=lambda: [LOCAL_WEBHOOK_SECRET], tolerance_seconds=300, max_body_bytes=256 * 1024
        ),
        events=EventIngestor(
            store=DynamoDBConnectionStore(boto3.client("dynamodb"), aws.table_name, event_ttl=timedelta(days=90)),
            publisher=publisher
            or EventBridgePublisher(boto3.client("events"), aws.event_bus_name, "connection-repair"),
            directory=directory,
            clock=lambda: now,
            sleep=lambda seconds: None,
            max_failed_repairs=max_failed_repairs,
        ),
        clock=lambda: now,
    )


def connection_state(aws: LocalResources, connection_id: str = "conn-1") -> dict[str, Any]:
    item = boto3.client("dynamodb").get_item(
        TableName=aws.table_name, Key={"pk": {"S": f"CONN#{connection_id}"}, "sk": {"S": "CONNECTION"}}
    )["Item"]
    return {name: next(iter(value.values())) for name, value in item.items()}


def count_items(aws: LocalResources, prefix: str) -> int:
    items = boto3.client("dynamodb").scan(TableName=aws.table_name)["Items"]
    return sum(1 for item in items if item["pk"]["S"].startswith(prefix))


def test_eight_concurrent_deliveries_of_one_event_store_one_record_and_one_downstream_event(aws, downstream):
    ingestor = make_ingestor(aws)
    body = status_change("evt-1", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    start = threading.Barrier(8)

    def deliver(retry: int) -> str:
        start.wait()
        try:
            return ingestor.receive(signed_delivery(body, now=NOW, retry_count=retry)).outcome.value
        except DeliveryInProgress:
            return "in_progress"  # answered 503: Meld retries it later

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(deliver, range(8)))

    assert outcomes.count("accepted") == 1
    assert set(outcomes) <= {"accepted", "duplicate", "in_progress"}
    assert count_items(aws, "EVENT#") == 1
    announced = downstream()
    assert [event["detail-type"] for event in announced] == ["Connection Needs Attention"]


FIVE_EVENTS = [
    ("e1", "2026-11-25T10:00:00Z", "ACTIVE", None),
    ("e2", "2026-11-25T10:10:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED"),
    ("e3", "2026-11-25T10:20:00Z", "DEGRADED", "INSTITUTION_CURRENTLY_UNAVAILABLE"),
    ("e4", "2026-11-25T10:30:00Z", "RECONNECT_REQUIRED", "TOKEN_EXPIRED"),
    ("e5", "2026-11-25T10:40:00Z", "ACTIVE", "NEW_ACCOUNTS_AVAILABLE"),
]


def test_every_ordering_of_five_status_changes_ends_in_the_state_of_the_newest(aws):
    ingestor = make_ingestor(aws)
    orderings = list(itertools.permutations(FIVE_EVENTS))
    assert len(orderings) == 120

    for number, ordering in enumerate(orderings):
        connection_id = f"conn-{number}"
        for event_id, timestamp, status, reason in ordering:
            body = status_change(f"{connection_id}-{event_id}", timestamp, status, reason, connection_id=connection_id)
            ingestor.receive(signed_delivery(body, now=NOW))
        state = connection_state(aws, connection_id)
        assert (state["status"], state["statusReason"], state["lastEventId"]) == (
            "ACTIVE",
            "NEW_ACCOUNTS_AVAILABLE",
            f"{connection_id}-e5",
        ), ordering
        assert state["action"] == "ADD_ACCOUNTS"
        # Every event stored once, one connection; then cleared, since moto copies the table for each transaction.
        assert forget(aws, connection_id) == {"events": 5, "connections": 1}


def forget(aws: LocalResources, connection_id: str) -> dict[str, int]:
    """Delete one connection's items; how many of each kind there were."""
    dynamodb = boto3.client("dynamodb")
    items = dynamodb.scan(TableName=aws.table_name)["Items"]
    keys = [
        {"pk": item["pk"], "sk": item["sk"]}
        for item in items
        if item["pk"]["S"] == f"CONN#{connection_id}" or item.get("connectionId", {}).get("S") == connection_id
    ]
    for key in keys:
        dynamodb.delete_item(TableName=aws.table_name, Key=key)
    kinds = [key["pk"]["S"].split("#", 1)[0] for key in keys]
    return {"events": kinds.count("EVENT"), "connections": kinds.count("CONN")}


def test_stale_event_is_stored_but_changes_nothing_and_announces_nothing(aws, downstream):
    ingestor = make_ingestor(aws)
    ingestor.receive(signed_delivery(status_change("new", "2026-11-25T11:00:00Z", "ACTIVE"), now=NOW))
    before = connection_state(aws)
    downstream()

    result = ingestor.receive(
        signed_delivery(status_change("old", "2026-11-25T10:00:00Z", "RECONNECT_REQUIRED"), now=NOW)
    )

    assert result.outcome == IngestOutcome.STALE
    assert connection_state(aws) == before
    assert count_items(aws, "EVENT#") == 2
    assert downstream() == []


def test_unknown_connection_without_customer_is_attributed_from_meld(aws, downstream):
    requests: list[httpx.Request] = []

    def meld(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(
            200,
            json={
                "id": "conn-1",
                "customerId": "meld-customer-1",
                "externalCustomerId": "customer-from-meld",
                "institutionId": "inst-1",
                "institutionName": "Chase",
                "status": "RECONNECT_REQUIRED",
                "serviceProviderDetails": {"accessToken": "never-kept"},
            },
        )

    ingestor = make_ingestor(aws, httpx.MockTransport(meld))
    body = status_change("evt-1", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED", external_customer_id=None)

    ingestor.receive(signed_delivery(body, now=NOW))

    assert [request.url.path for request in requests] == ["/bank-linking/connections/conn-1"]
    state = connection_state(aws)
    assert state["externalCustomerId"] == "customer-from-meld"
    assert state["gsi1pk"] == "CUST#customer-from-meld"
    [announced] = downstream()
    assert announced["detail"]["externalCustomerId"] == "customer-from-meld"
    # Known connections are not looked up again.
    ingestor.receive(
        signed_delivery(status_change("evt-2", "2026-11-25T11:05:00Z", "ACTIVE", external_customer_id=None), now=NOW)
    )
    assert len(requests) == 1


@pytest.mark.parametrize("webhook_names_them", [False, True])
def test_what_the_webhook_leaves_out_is_filled_in_from_meld_and_what_it_says_wins(aws, webhook_names_them):
    def meld(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "id": "conn-1",
                "customerId": "meld-customer-from-meld",
                "externalCustomerId": "customer-from-meld",
                "institutionId": "inst-from-meld",
                "institutionName": "Chase (from Meld)",
                "status": "RECONNECT_REQUIRED",
            },
        )

    body = status_change("evt-1", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED", external_customer_id=None)
    if not webhook_names_them:
        for field in ("customerId", "institutionId", "institutionName"):
            del body["payload"][field]

    make_ingestor(aws, httpx.MockTransport(meld)).receive(signed_delivery(body, now=NOW))

    state = connection_state(aws)
    assert state["externalCustomerId"] == "customer-from-meld"
    expected = (
        ("meld-customer-1", "inst-1", "Chase")
        if webhook_names_them
        else ("meld-customer-from-meld", "inst-from-meld", "Chase (from Meld)")
    )
    assert (state["customerId"], state["institutionId"], state["institutionName"]) == expected


def test_meld_failure_while_attributing_leaves_nothing_written_for_meld_to_retry(aws):
    ingestor = make_ingestor(aws, httpx.MockTransport(lambda request: httpx.Response(503, json={"code": "DOWN"})))
    body = status_change("evt-1", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED", external_customer_id=None)

    with pytest.raises(MeldUnavailable):
        ingestor.receive(signed_delivery(body, now=NOW))

    assert count_items(aws, "") == 0


class DyingPublisher(EventBridgePublisher):
    """The bus is fine, but this process dies right after the commit, before it publishes."""

    def publish(self, events: Sequence[AnyDownstreamEvent]) -> None:
        raise RuntimeError("process died")


def test_outbox_held_by_a_live_delivery_is_not_published_twice(aws, downstream):
    # Given a delivery that stored its event but died before publishing (its lease is still running)
    body = status_change("evt-1", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED")
    dying = make_ingestor(
        aws, publisher=DyingPublisher(boto3.client("events"), aws.event_bus_name, "connection-repair")
    )
    with pytest.raises(RuntimeError):
        dying.receive(signed_delivery(body, now=NOW))
    store = DynamoDBConnectionStore(boto3.client("dynamodb"), aws.table_name, event_ttl=timedelta(days=90))
    assert store.get_event("evt-1").pending  # type: ignore[union-attr]

    # When a duplicate arrives within the lease, it does not publish and is not acknowledged
    with pytest.raises(DeliveryInProgress):
        make_ingestor(aws).receive(signed_delivery(body, now=NOW, retry_count=1))
    assert downstream() == []

    # Then once the lease has lapsed, Meld's next retry publishes it exactly once
    later = make_ingestor(aws, now=NOW + timedelta(minutes=1))
    result = later.receive(signed_delivery(body, now=NOW + timedelta(minutes=1), retry_count=2))
    assert (result.outcome, result.published) == (IngestOutcome.DUPLICATE, 1)
    assert [event["detail-type"] for event in downstream()] == ["Connection Needs Attention"]
    again = later.receive(signed_delivery(body, now=NOW + timedelta(minutes=1), retry_count=3))
    assert again.published == 0
    stored = boto3.client("dynamodb").get_item(TableName=aws.table_name, Key=event_key("evt-1"))["Item"]
    assert not {"pending", "leaseUntil"} & stored.keys()
    assert json.loads(stored["rawBody"]["S"])["eventId"] == "evt-1"


def test_a_body_of_exactly_the_limit_is_taken_and_one_byte_more_is_not(aws):
    ingestor = make_ingestor(aws)
    body = status_change("evt-1", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    raw = json.dumps(body).encode()
    padded = raw[:-1] + b" " * (256 * 1024 - len(raw)) + b"}"
    assert len(padded) == 256 * 1024
    assert ingestor.receive(signed_delivery(padded, now=NOW)).outcome == IngestOutcome.ACCEPTED
    with pytest.raises(PayloadTooLarge, match="larger than 262144 bytes"):
        ingestor.receive(signed_delivery(padded + b" ", now=NOW))


@pytest.mark.parametrize(("header", "stored"), [("3", "3"), ("not-a-number", "0"), (" 2 ", "2")])
def test_melds_retry_count_is_kept_with_the_event_and_nonsense_reads_as_zero(aws, header: str, stored: str):
    delivery = signed_delivery(status_change("evt-1", "2026-11-25T11:00:00Z", "ACTIVE"), now=NOW)
    delivery = WebhookDelivery(
        headers=dict(delivery.headers) | {"meld-retry-count": header},
        raw_body=delivery.raw_body,
        request_url=delivery.request_url,
    )
    make_ingestor(aws).receive(delivery)
    item = boto3.client("dynamodb").get_item(TableName=aws.table_name, Key=event_key("evt-1"))["Item"]
    assert item["retryCount"] == {"N": stored}


@pytest.mark.parametrize(
    ("status", "reason", "unknown"),
    [
        ("RECONNECT_REQUIRED", "LOGIN_REQUIRED", False),
        ("SOMETHING_NEW", None, True),
        ("ACTIVE", "A_NEW_REASON", True),
    ],
)
def test_a_status_or_reason_meld_has_not_documented_is_flagged(aws, status: str, reason: str | None, unknown: bool):
    ingestor = make_ingestor(aws)
    result = ingestor.receive(signed_delivery(status_change("evt-1", "2026-11-25T11:00:00Z", status, reason), now=NOW))
    assert (result.outcome, result.unknown_state) == (IngestOutcome.ACCEPTED, unknown)
    assert (result.event_id, result.event_type, result.connection_id) == (
        "evt-1",
        "BANK_LINKING_CONNECTION_STATUS_CHANGE",
        "conn-1",
    )
    assert result.published == (1 if status == "RECONNECT_REQUIRED" else 0)  # the new episode, announced
    duplicate = ingestor.receive(
        signed_delivery(status_change("evt-1", "2026-11-25T11:00:00Z", status, reason), now=NOW, retry_count=1)
    )
    assert (duplicate.outcome, duplicate.event_type, duplicate.connection_id, duplicate.published) == (
        IngestOutcome.DUPLICATE,
        "BANK_LINKING_CONNECTION_STATUS_CHANGE",
        "conn-1",
        0,
    )
    # ... on the silent path too (a second event that changes nothing downstream)
    again = ingestor.receive(signed_delivery(status_change("evt-2", "2026-11-25T11:01:00Z", status, reason), now=NOW))
    assert (again.outcome, again.unknown_state, again.published) == (IngestOutcome.ACCEPTED, unknown, 0)


class InterleavedStore(DynamoDBConnectionStore):
    """The real store, where another writer changes the connection right before each of our first ``races``
    transition writes (as a concurrent delivery of another event would)."""

    def __init__(self, aws: LocalResources, races: int, meanwhile: Any) -> None:
        super().__init__(boto3.client("dynamodb"), aws.table_name, event_ttl=timedelta(days=90))
        self.races = races
        self.meanwhile = meanwhile

    def save_event(self, event: Any, **kwargs: Any) -> None:
        if kwargs.get("connection") is not None and self.races:
            self.races -= 1
            self.meanwhile()
        super().save_event(event, **kwargs)


def test_a_transition_that_loses_a_race_reads_the_connection_again_and_applies_on_top(aws, downstream):
    ingestor = make_ingestor(aws)
    ingestor.receive(signed_delivery(status_change("evt-1", "2026-11-25T11:00:00Z", "ACTIVE"), now=NOW))
    renamed = iter(range(10))

    def another_writer() -> None:
        # A newer-in-version but older-in-time change lands (an institution rename by another path)
        store = DynamoDBCustomerConnections(boto3.client("dynamodb"), aws.table_name)
        current = store.get_connection("conn-1")
        assert current is not None
        changed = current.model_copy(
            update={"institution_name": f"Chase {next(renamed)}", "version": current.version + 1}
        )
        store.save_connection(changed, expected_version=current.version)

    racing = make_ingestor(aws)
    racing._events._store = InterleavedStore(aws, races=2, meanwhile=another_writer)  # type: ignore[attr-defined]
    body = status_change("evt-2", "2026-11-25T11:05:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    del body["payload"]["institutionName"]
    result = racing.receive(signed_delivery(body, now=NOW))

    assert (result.outcome, result.published) == (IngestOutcome.ACCEPTED, 1)
    state = connection_state(aws)
    assert (state["status"], state["lastEventId"], state["institutionName"]) == (
        "RECONNECT_REQUIRED",
        "evt-2",
        "Chase 1",
    )
    assert [event["detail-type"] for event in downstream()] == ["Connection Needs Attention"]


def test_a_transition_that_keeps_losing_gives_up_and_writes_nothing(aws):
    def another_writer() -> None:
        store = DynamoDBCustomerConnections(boto3.client("dynamodb"), aws.table_name)
        current = store.get_connection("conn-1")
        assert current is not None
        store.save_connection(
            current.model_copy(update={"version": current.version + 1}), expected_version=current.version
        )

    make_ingestor(aws).receive(signed_delivery(status_change("evt-1", "2026-11-25T11:00:00Z", "ACTIVE"), now=NOW))
    racing = make_ingestor(aws)
    racing._events._store = InterleavedStore(aws, races=99, meanwhile=another_writer)  # type: ignore[attr-defined]
    body = status_change("evt-2", "2026-11-25T11:05:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    with pytest.raises(ConcurrentUpdate, match=r"^conn-1$"):
        racing.receive(signed_delivery(body, now=NOW))
    assert count_items(aws, "EVENT#evt-2") == 0


def test_events_stamped_alike_are_ordered_by_their_ids_on_the_transition_path_too(aws):
    ingestor = make_ingestor(aws)
    ingestor.receive(signed_delivery(status_change("M-1", "2026-11-25T11:00:00Z", "ACTIVE"), now=NOW))
    # Same stamp, a smaller id: older. Not silent (it would open an episode), so the full transition judges it.
    late = ingestor.receive(
        signed_delivery(status_change("A-1", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED"), now=NOW)
    )
    assert late.outcome == IngestOutcome.STALE
    assert (connection_state(aws)["status"], connection_state(aws)["lastEventId"]) == ("ACTIVE", "M-1")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff\xfe", "body is not valid UTF-8 JSON"),
        (b"{not json", "body is not valid UTF-8 JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b'{"eventType": "X"}', "missing or invalid fields: eventId, timestamp"),
    ],
)
def test_a_signed_body_that_is_not_a_meld_event_says_what_is_wrong(aws, raw: bytes, message: str):
    with pytest.raises(InvalidWebhook) as refused:
        make_ingestor(aws).receive(signed_delivery(raw, now=NOW))
    assert str(refused.value) == message
    assert count_items(aws, "") == 0


def test_an_event_stamped_in_the_far_future_counts_from_its_receipt_and_blocks_nothing_after_it(aws, downstream):
    # A signed event stamped 2099 (Meld's bug, or a body someone got signed): it is applied, ordered at its receipt,
    # and its episode starts then (an episode starting in 2099 would never be due for a message).
    broken = status_change("evt-2099", "2099-01-01T00:00:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    result = make_ingestor(aws, now=NOW).receive(signed_delivery(broken, now=NOW))
    assert (result.outcome, result.future_stamped) == (IngestOutcome.ACCEPTED, True)
    state = connection_state(aws)
    assert (state["lastEventAt"], state["attentionSince"]) == (NOW.isoformat().replace("+00:00", "Z"),) * 2
    needs_attention = downstream()
    assert [event["detail"]["attentionSince"] for event in needs_attention] == [state["attentionSince"]]

    # A minute later the connection is repaired: the newer event is applied, not stale
    later = NOW + timedelta(minutes=1)
    repaired = status_change("evt-active", later.isoformat().replace("+00:00", "Z"), "ACTIVE")
    result = make_ingestor(aws, now=later).receive(signed_delivery(repaired, now=later))
    assert (result.outcome, result.future_stamped) == (IngestOutcome.ACCEPTED, False)
    assert connection_state(aws)["status"] == "ACTIVE"
    assert [event["detail-type"] for event in downstream()] == ["Connection Attention Ended"]


def test_a_stamp_a_little_ahead_of_the_receivers_clock_is_kept_so_such_events_still_order_as_sent(aws):
    # Two events stamped 2 and 3 minutes ahead (a clock off by less than the tolerance), delivered newest first
    newer = status_change("evt-3", (NOW + timedelta(minutes=3)).isoformat(), "ACTIVE")
    older = status_change("evt-2", (NOW + timedelta(minutes=2)).isoformat(), "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    ingestor = make_ingestor(aws, now=NOW)
    assert ingestor.receive(signed_delivery(newer, now=NOW)).future_stamped is False
    assert ingestor.receive(signed_delivery(older, now=NOW)).outcome == IngestOutcome.STALE
    assert connection_state(aws)["status"] == "ACTIVE"


def test_the_stored_body_keeps_the_providers_name_but_not_its_access_token(aws):
    body = status_change("evt-provider", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    make_ingestor(aws).receive(signed_delivery(body, now=NOW))
    stored = boto3.client("dynamodb").get_item(TableName=aws.table_name, Key=event_key("evt-provider"))["Item"]
    assert "provider-access-token" not in json.dumps(stored)
    kept = json.loads(stored["rawBody"]["S"])
    assert kept["payload"]["serviceProviderDetails"] == {"serviceProvider": "PLAID"}
    assert kept["payload"] | {"serviceProviderDetails": None} == body["payload"] | {"serviceProviderDetails": None}


def test_an_episode_opened_before_its_customer_was_known_is_announced_when_they_are(aws, downstream):
    unknown_to_meld = httpx.MockTransport(lambda request: httpx.Response(404, json={"code": "NOT_FOUND"}))
    ingestor = make_ingestor(aws, unknown_to_meld)
    first = status_change(
        "evt-1", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED", external_customer_id=None
    )
    ingestor.receive(signed_delivery(first, now=NOW))
    [unattributed] = downstream()
    assert unattributed["detail"]["externalCustomerId"] is None  # the notifier has nobody to tell

    second = status_change("evt-2", "2026-11-25T11:05:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    assert ingestor.receive(signed_delivery(second, now=NOW)).published == 1
    [announced] = downstream()
    assert announced["detail-type"] == "Connection Needs Attention"
    assert (announced["detail"]["episodeId"], announced["detail"]["externalCustomerId"]) == (
        unattributed["detail"]["episodeId"],
        "customer-1",
    )


def record_attempt(aws: LocalResources) -> None:
    """What the Repair API records when it hands out a repair token for conn-1 at 11:10."""
    connections = DynamoDBCustomerConnections(boto3.client("dynamodb"), aws.table_name)
    current = connections.get_connection("conn-1")
    assert current is not None
    attempted = current.model_copy(
        update={
            "repair_attempts": 1,
            "last_repair_at": datetime(2026, 11, 25, 11, 10, tzinfo=UTC),
            "repair_pending": True,
            "version": current.version + 1,
        }
    )
    connections.save_connection(attempted, expected_version=current.version)


def test_the_configured_number_of_failed_repairs_turns_the_action_into_start_new_connection(aws):
    ingestor = make_ingestor(aws, max_failed_repairs=1)
    broken = status_change("evt-1", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    ingestor.receive(signed_delivery(broken, now=NOW))
    record_attempt(aws)  # the Repair API handed out a token at 11:10

    # The customer finished the widget at 11:15: the verdict waits for the status Meld sends with it
    completed = envelope(
        "BANK_LINKING_CONNECTION_COMPLETED", "evt-2", "2026-11-25T11:15:00Z", {"connectionId": "conn-1"}
    )
    ingestor.receive(signed_delivery(completed, now=NOW))
    state = connection_state(aws)
    assert (state.get("failedRepairs"), state["action"], state["completedAt"]) == (
        "0",
        "REPAIR",
        "2026-11-25T11:15:00Z",
    )
    # Stamped a moment before the completion, the status says it is still broken: one failed repair, the limit
    still_broken = status_change("evt-3", "2026-11-25T11:14:59Z", "RECONNECT_REQUIRED", "PROVIDER_ERROR")
    ingestor.receive(signed_delivery(still_broken, now=NOW))
    state = connection_state(aws)
    assert (state["failedRepairs"], state["action"]) == ("1", "START_NEW_CONNECTION")
    assert "completedAt" not in state


def test_a_completion_stamped_before_the_status_that_judges_it_is_not_stale(aws):
    ingestor = make_ingestor(aws, max_failed_repairs=1)
    ingestor.receive(signed_delivery(status_change("evt-1", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED"), now=NOW))
    record_attempt(aws)
    # Meld's status after the attempt arrives first; the completion, stamped earlier, arrives after it
    still_broken = status_change("evt-3", "2026-11-25T11:20:00Z", "RECONNECT_REQUIRED", "PROVIDER_ERROR")
    ingestor.receive(signed_delivery(still_broken, now=NOW))
    completed = envelope(
        "BANK_LINKING_CONNECTION_COMPLETED", "evt-2", "2026-11-25T11:15:00Z", {"connectionId": "conn-1"}
    )
    assert ingestor.receive(signed_delivery(completed, now=NOW)).outcome == IngestOutcome.ACCEPTED
    state = connection_state(aws)
    assert (state["failedRepairs"], state["action"]) == ("1", "START_NEW_CONNECTION")


def test_a_silent_update_moves_the_order_so_an_event_older_than_it_is_stale(aws):
    ingestor = make_ingestor(aws)
    ingestor.receive(signed_delivery(status_change("evt-1", "2026-11-25T11:00:00Z", "ACTIVE"), now=NOW))
    # A newer event that changes nothing downstream: written by the silent path
    assert ingestor.receive(
        signed_delivery(status_change("evt-3", "2026-11-25T11:10:00Z", "ACTIVE"), now=NOW)
    ).outcome == (IngestOutcome.ACCEPTED)
    assert connection_state(aws)["lastEventKey"] == "2026-11-25T11:10:00.000000Z#evt-3"
    # One stamped between the two arrives late: older than what the connection reflects
    late = status_change("evt-2", "2026-11-25T11:05:00Z", "ACTIVE")
    assert ingestor.receive(signed_delivery(late, now=NOW)).outcome == IngestOutcome.STALE


def test_a_customer_named_by_a_silent_update_lists_the_connection_under_them(aws):
    ingestor = make_ingestor(aws, httpx.MockTransport(lambda request: httpx.Response(404, json={"code": "NOT_FOUND"})))
    first = status_change("evt-1", "2026-11-25T11:00:00Z", "ACTIVE", external_customer_id=None)
    ingestor.receive(signed_delivery(first, now=NOW))
    connections = DynamoDBCustomerConnections(boto3.client("dynamodb"), aws.table_name)
    assert connections.list_connections("customer-1") == []
    named = status_change("evt-2", "2026-11-25T11:05:00Z", "ACTIVE")
    assert ingestor.receive(signed_delivery(named, now=NOW)).published == 0  # silent: nothing to announce
    assert [c.connection_id for c in connections.list_connections("customer-1")] == ["conn-1"]


def test_a_completion_makes_a_connection_in_progress_active_and_never_silently(aws):
    ingestor = make_ingestor(aws)
    ingestor.receive(signed_delivery(status_change("evt-1", "2026-11-25T11:00:00Z", "IN_PROGRESS"), now=NOW))
    completed = envelope(
        "BANK_LINKING_CONNECTION_COMPLETED", "evt-2", "2026-11-25T11:05:00Z", {"connectionId": "conn-1"}
    )
    assert ingestor.receive(signed_delivery(completed, now=NOW)).outcome == IngestOutcome.ACCEPTED
    assert connection_state(aws)["status"] == "ACTIVE"
