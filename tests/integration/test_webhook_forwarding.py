"""Every verified webhook, of every type, goes to the bus once as `Meld Webhook Received`, through the outbox.

The real webhook handler on moto; what reaches the bus is caught by a rule on `Meld Webhook Received` into a queue.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from connection_repair.adapters.dynamodb.keys import event_key
from connection_repair.domain.bus_events import MAX_FORWARDED_BYTES
from functions.webhook_ingest import app as webhook_app
from local.apigw import http_api_event
from local.aws_resources import LocalResources
from local.make_events import envelope
from tests.support import LambdaContext, conforming, signed_delivery, status_change

NOW = datetime.now(UTC).replace(microsecond=0)
# The README's rule: one of Meld's event types, routed to an app's own target.
APP_RULE = {
    "source": ["connection-repair"],
    "detail-type": ["Meld Webhook Received"],
    "detail": {"eventType": ["BANK_LINKING_TRANSACTIONS_AGGREGATED"]},
}
PROVIDER = {"serviceProvider": "PLAID", "accessToken": "access-sandbox-secret"}


def queue_for(aws: LocalResources, name: str, pattern: dict[str, Any]) -> Callable[[], list[dict[str, Any]]]:
    """A rule on the app's bus into a queue of its own; call the result to drain what arrived."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=aws.event_bus_name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, EventBusName=aws.event_bus_name, Targets=[{"Id": "q", "Arn": arn}])

    def drain() -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                received.append(conforming(json.loads(message["Body"])))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return received

    return drain


@pytest.fixture
def forwarded(webhook_env: LocalResources) -> Callable[[], list[dict[str, Any]]]:
    return queue_for(
        webhook_env, "forwarded", {"source": ["connection-repair"], "detail-type": ["Meld Webhook Received"]}
    )


def deliver(body: dict[str, Any], *, retry_count: int = 0) -> int:
    delivery = signed_delivery(body, now=NOW, retry_count=retry_count)
    event = http_api_event("POST", "/webhooks/meld", headers=dict(delivery.headers), body=delivery.raw_body)
    status: int = webhook_app.lambda_handler(event, LambdaContext())["statusCode"]
    return status


def with_provider(body: dict[str, Any]) -> dict[str, Any]:
    body["payload"]["serviceProviderDetails"] = PROVIDER
    return body


def test_every_verified_webhook_is_forwarded_once_as_meld_sent_it_without_provider_details(
    forwarded: Callable[[], list[dict[str, Any]]],
    downstream: Callable[[], list[dict[str, Any]]],
    webhook_env: LocalResources,
    captured_logs: Callable[[], str],
) -> None:
    broken = with_provider(status_change("evt-1", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED"))
    older = status_change("evt-0", "2026-11-25T10:00:00Z", "ACTIVE")  # stale when it arrives
    aggregated = envelope(
        "BANK_LINKING_TRANSACTIONS_AGGREGATED",
        "evt-2",
        "2026-11-25T11:05:00Z",
        {"connectionId": "conn-1", "accounts": [{"id": "acc-1", "serviceProviderDetails": PROVIDER}]},
    )

    statuses = [deliver(broken), deliver(broken, retry_count=1), deliver(older), deliver(aggregated)]

    assert statuses == [200, 200, 200, 200]
    received = forwarded()
    assert sorted(event["detail"]["eventId"] for event in received) == ["evt-0", "evt-1", "evt-2"]  # once each
    by_id = {event["detail"]["eventId"]: event for event in received}
    expected = json.loads(json.dumps(broken))
    del expected["payload"]["serviceProviderDetails"]
    assert by_id["evt-1"]["detail"] == expected  # the envelope itself, nothing else
    assert by_id["evt-2"]["detail"]["payload"]["accounts"] == [{"id": "acc-1"}]
    # The transactions event names its connection: stored under it (its history), though it changes nothing
    stored = boto3.client("dynamodb").get_item(TableName=webhook_env.table_name, Key=event_key("evt-2"))["Item"]
    assert (stored["connectionId"], stored["gsi1pk"]) == ({"S": "conn-1"}, {"S": "CONN#conn-1"})
    [ingested] = [
        json.loads(line) for line in captured_logs().splitlines() if '"evt-2"' in line and "Webhook ingested" in line
    ]
    assert (ingested["outcome"], ingested["connection_id"]) == ("ignored", "conn-1")
    assert "access-sandbox-secret" not in json.dumps(received)
    assert by_id["evt-1"]["time"] == "2026-11-25T11:00:00Z"
    # The connection's own announcements are unchanged beside them
    assert [event["detail-type"] for event in downstream()] == ["Connection Needs Attention"]


def test_a_status_change_naming_its_connection_by_id_is_stored_under_it(webhook_env: LocalResources) -> None:
    # Older API versions name the connection `id`, not `connectionId`
    body = envelope(
        "BANK_LINKING_CONNECTION_STATUS_CHANGE",
        "evt-by-id",
        "2026-11-25T11:00:00Z",
        {"id": "conn-by-id", "externalCustomerId": "customer-1", "status": "ACTIVE"},
    )
    assert deliver(body) == 200
    stored = boto3.client("dynamodb").get_item(TableName=webhook_env.table_name, Key=event_key("evt-by-id"))["Item"]
    assert stored["connectionId"] == {"S": "conn-by-id"}


def test_the_readmes_rule_routes_one_event_type_to_the_apps_target(webhook_env: LocalResources) -> None:
    apps_target = queue_for(webhook_env, "apps-transactions", APP_RULE)
    aggregated = envelope("BANK_LINKING_TRANSACTIONS_AGGREGATED", "evt-2", "2026-11-25T11:05:00Z", {"x": 1})

    deliver(status_change("evt-1", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED"))
    deliver(aggregated)

    assert [event["detail"]["eventId"] for event in apps_target()] == ["evt-2"]


def test_a_forward_the_bus_refused_is_kept_and_published_by_the_retry_once(
    webhook_env: LocalResources, forwarded: Callable[[], list[dict[str, Any]]]
) -> None:
    from connection_repair.wiring.webhook import webhook_ingestor

    body = envelope("BANK_LINKING_ACCOUNTS_UPDATED", "evt-accounts", "2026-11-25T11:00:00Z", {"connectionId": "c"})
    bus = webhook_ingestor()._events._outbox._publisher._client  # type: ignore[attr-defined]
    refusals = iter([True])

    def refuse_once(**_: Any) -> Any:
        if next(refusals, False):
            return SimpleNamespace(status_code=400, headers={}), {"Error": {"Code": "AccessDeniedException"}}
        return None

    bus.meta.events.register("before-call.events.PutEvents", refuse_once)

    first = deliver(body)
    kept = boto3.client("dynamodb").get_item(
        TableName=webhook_env.table_name, Key={"pk": {"S": "EVENT#evt-accounts"}, "sk": {"S": "EVENT"}}
    )["Item"]
    assert forwarded() == []
    lapse_lease(webhook_env, "evt-accounts")  # Meld's retry comes a minute later
    retried = deliver(body, retry_count=1)
    again = deliver(body, retry_count=2)

    assert (first, retried, again) == (503, 200, 200)
    assert json.loads(kept["pending"]["S"])[0]["kind"] == "meld_webhook"  # kept in the outbox meanwhile
    assert [event["detail"]["eventId"] for event in forwarded()] == ["evt-accounts"]


def lapse_lease(aws: LocalResources, event_id: str) -> None:
    boto3.client("dynamodb").update_item(
        TableName=aws.table_name,
        Key={"pk": {"S": f"EVENT#{event_id}"}, "sk": {"S": "EVENT"}},
        UpdateExpression="SET leaseUntil = :past",
        ExpressionAttributeValues={":past": {"N": "0"}},
    )


def test_forwarding_off_forwards_nothing(
    webhook_env: LocalResources, forwarded: Callable[[], list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from connection_repair.wiring.webhook import webhook_ingestor

    monkeypatch.setenv("FORWARD_MELD_WEBHOOKS", "false")
    webhook_ingestor.cache_clear()

    assert deliver(status_change("evt-1", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED")) == 200

    assert forwarded() == []


def test_an_envelope_too_large_for_eventbridge_is_forwarded_without_its_payload(
    forwarded: Callable[[], list[dict[str, Any]]],
) -> None:
    body = envelope("BANK_LINKING_TRANSACTIONS_AGGREGATED", "evt-big", "2026-11-25T11:00:00Z", {})
    body["payload"] = {"transactions": ["x" * 1000] * (MAX_FORWARDED_BYTES // 1000 + 10)}

    assert deliver(body) == 200

    (event,) = forwarded()
    assert event["detail"]["payloadOmitted"] is True
    assert "payload" not in event["detail"]
    assert event["detail"]["eventId"] == "evt-big"


def test_a_stamp_a_little_ahead_is_kept_as_the_forwarded_events_time(
    forwarded: Callable[[], list[dict[str, Any]]],
) -> None:
    # A stamp within the tolerance ahead of now is Meld's, kept as the event's time.
    ahead = (NOW + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    assert deliver(status_change("evt-ahead", ahead, "ACTIVE")) == 200
    (event,) = forwarded()
    assert event["time"] == ahead


def test_a_quiet_status_change_whose_forward_was_refused_holds_its_lease_until_it_lapses(
    webhook_env: LocalResources, forwarded: Callable[[], list[dict[str, Any]]]
) -> None:
    # A status change that changes nothing downstream (written in one request) still has its forward to publish
    from connection_repair.wiring.webhook import webhook_ingestor

    assert deliver(status_change("evt-1", "2026-11-25T11:00:00Z", "ACTIVE")) == 200
    bus = webhook_ingestor()._events._outbox._publisher._client  # type: ignore[attr-defined]
    refusals = iter([True])
    bus.meta.events.register(
        "before-call.events.PutEvents",
        lambda **_: (
            (SimpleNamespace(status_code=400, headers={}), {"Error": {"Code": "AccessDeniedException"}})
            if next(refusals, False)
            else None
        ),
    )
    body = status_change("evt-2", "2026-11-25T11:05:00Z", "ACTIVE")
    assert deliver(body) == 503

    # Within the lease a retry (the first delivery may still be publishing) publishes nothing
    assert deliver(body, retry_count=1) == 503
    assert [event["detail"]["eventId"] for event in forwarded()] == ["evt-1"]
    lapse_lease(webhook_env, "evt-2")
    assert deliver(body, retry_count=2) == 200
    assert [event["detail"]["eventId"] for event in forwarded()] == ["evt-2"]


def test_every_outcome_counts_what_it_published(
    webhook_env: LocalResources, forwarded: Callable[[], list[dict[str, Any]]], captured_logs: Callable[[], str]
) -> None:
    # The forward of each webhook, plus what its change announced (a break: Connection Needs Attention)
    deliver(status_change("evt-1", "2026-11-25T11:00:00Z", "ACTIVE"))  # a new connection
    deliver(status_change("evt-2", "2026-11-25T11:05:00Z", "ACTIVE"))  # nothing changes downstream: one write
    deliver(status_change("evt-3", "2026-11-25T11:10:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED"))  # a break
    deliver(status_change("evt-0", "2026-11-25T10:55:00Z", "ACTIVE"))  # older than what the connection reflects
    deliver(envelope("BANK_LINKING_ACCOUNTS_UPDATED", "evt-4", "2026-11-25T11:15:00Z", {"connectionId": "conn-1"}))
    deliver(status_change("evt-2", "2026-11-25T11:05:00Z", "ACTIVE"), retry_count=1)  # a duplicate, all out

    lines = [json.loads(line) for line in captured_logs().splitlines() if line.startswith("{")]
    ingested = [
        (line["event_id"], line["outcome"], line["published"])
        for line in lines
        if line.get("message") == "Webhook ingested"
    ]
    assert ingested == [
        ("evt-1", "accepted", 1),
        ("evt-2", "accepted", 1),
        ("evt-3", "accepted", 2),
        ("evt-0", "stale", 1),
        ("evt-4", "ignored", 1),
        ("evt-2", "duplicate", 0),
    ]
    assert len(forwarded()) == 5
