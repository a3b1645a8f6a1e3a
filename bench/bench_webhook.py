"""Webhook ingest: warm p50 of the handler, signature to response, vs the bare boto3 calls any implementation must
make for the same event, to the same backends (moto, in-process), interleaved in the same run. Target: ratio <= 1.3.

The events move a broken connection between RECONNECT_REQUIRED reasons: nothing is due downstream of the connection,
so the handler makes one write request, and forwards the webhook (`Meld Webhook Received`, on by default): a
`PutEvents`, then the write that clears the outbox. The floor is those same three requests (prebuilt), sent by bare
boto3: a forward that survives a crash after the 200, and is not sent again when Meld retries a delivery whose 200
was lost, needs it written with the event and marked sent after the `PutEvents` — whatever the implementation. moto's
cost of evaluating a request is large and not AWS's, so comparing against different requests would measure moto, not
the handler.

Run: `make bench-webhook` (or `.venv/bin/python -m bench.bench_webhook`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.offline import use_fake_aws

use_fake_aws(POWERTOOLS_LOG_LEVEL="INFO")

import boto3
from moto import mock_aws

from bench.harness import Comparison, compare, record
from local.apigw import http_api_event
from local.aws_resources import create_resources
from local.make_events import LOCAL_WEBHOOK_SECRET, LOCAL_WEBHOOK_URL, envelope

ITERATIONS = int(os.environ.get("BENCH_ITERATIONS", "400"))
WARMUP = 50
T0 = datetime.now(UTC) - timedelta(hours=1)


def signed_status_change(index: int, reason: str) -> dict[str, Any]:
    """Meld's side: a signed delivery moving one connection between RECONNECT_REQUIRED reasons (no downstream)."""
    from connection_repair.ingestion.signature import sign

    timestamp = (T0 + timedelta(milliseconds=index)).isoformat().replace("+00:00", "Z")
    body = envelope(
        "BANK_LINKING_CONNECTION_STATUS_CHANGE",
        f"bench-evt-{index}",
        timestamp,
        {
            "connectionId": "bench-conn",
            "customerId": "meld-customer",
            "externalCustomerId": "bench-customer",
            "institutionId": "inst",
            "institutionName": "Chase",
            "newStatus": "RECONNECT_REQUIRED",
            "statusReason": reason,
        },
    )
    raw = json.dumps(body).encode()
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    headers = {
        "content-type": "application/json",
        "meld-signature": sign(LOCAL_WEBHOOK_SECRET, stamp, LOCAL_WEBHOOK_URL, raw),
        "meld-signature-timestamp": stamp,
    }
    return http_api_event("POST", "/webhooks/meld", route_key="POST /webhooks/meld", headers=headers, body=raw)


def main() -> Comparison:
    with mock_aws():
        resources = create_resources()
        os.environ.update(
            TABLE_NAME=resources.table_name,
            EVENT_BUS_NAME=resources.event_bus_name,
            MELD_WEBHOOK_URL=LOCAL_WEBHOOK_URL,
            MELD_WEBHOOK_SECRET=LOCAL_WEBHOOK_SECRET,
            MELD_API_KEY="bench",
        )
        from connection_repair.adapters.dynamodb.connection_store import silent_update_request
        from connection_repair.adapters.dynamodb.connections import connection_item
        from connection_repair.adapters.dynamodb.events import event_item
        from connection_repair.adapters.dynamodb.keys import event_key
        from connection_repair.domain.bus_events import MeldWebhookReceived
        from connection_repair.domain.connection import Connection, ConnectionChange
        from connection_repair.domain.status_policy import Action
        from connection_repair.domain.transitions import silent_update
        from connection_repair.outbox.ports import StoredEvent
        from functions.webhook_ingest import app
        from tests.support import LambdaContext

        total = WARMUP + ITERATIONS
        reasons = ["LOGIN_REQUIRED", "TOKEN_EXPIRED"]
        events = [signed_status_change(i, reasons[i % 2]) for i in range(total)]
        context = LambdaContext()
        dynamodb = boto3.client("dynamodb")

        # The floor sends the very request the handler sends for these events (event item + conditional update
        # of the connection in one transaction), prebuilt, with bare boto3: what is left is the handler's own cost.
        floor_requests = []
        floor_forwards = []
        floor_clears = []
        events_client = boto3.client("events")
        for i in range(total):
            raw = events[i]["body"]
            event_time = T0 + timedelta(milliseconds=i)
            stored = StoredEvent(
                event_id=f"floor-evt-{i}",
                event_type="BANK_LINKING_CONNECTION_STATUS_CHANGE",
                event_time=event_time,
                connection_id="floor-conn",
                received_at=datetime.now(UTC),
                retry_count=0,
                raw_body=raw,
                # The forward, in the event's outbox as the handler writes it.
                pending=[MeldWebhookReceived.of(json.loads(raw), event_time)],
            )
            change = ConnectionChange(
                connection_id="floor-conn",
                status="RECONNECT_REQUIRED",
                status_reason=reasons[i % 2],
                external_customer_id="bench-customer",
            )
            quiet = silent_update(change, event_id=stored.event_id, event_time=event_time)
            floor_requests.append(
                [
                    {
                        "Put": {
                            "TableName": resources.table_name,
                            "Item": event_item(stored, ttl=timedelta(days=90), lease_until=stored.received_at),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Update": {"TableName": resources.table_name, **silent_update_request("floor-conn", quiet)}},
                ]
            )
            floor_clears.append(
                {
                    "Key": event_key(stored.event_id),
                    "UpdateExpression": (
                        "SET expiresAt = if_not_exists(expiresOncePublished, expiresAt) "
                        "REMOVE pending, leaseUntil, expiresOncePublished, gsi2pk, gsi2sk"
                    ),
                }
            )
            envelope_sent = json.loads(raw)
            floor_forwards.append(
                [
                    {
                        "EventBusName": resources.event_bus_name,
                        "Source": "connection-repair",
                        "DetailType": "Meld Webhook Received",
                        "Detail": json.dumps(envelope_sent, separators=(",", ":")),
                        "Time": event_time,
                    }
                ]
            )
        # Both connections start in the same state: broken, inside an open episode.
        opening = Connection(
            connection_id="floor-conn",
            external_customer_id="bench-customer",
            status="RECONNECT_REQUIRED",
            status_reason="LOGIN_REQUIRED",
            action=Action.REPAIR,
            episode_id="episode",
            episode_action=Action.REPAIR,
            attention_since=T0,
            version=1,
        )
        dynamodb.put_item(TableName=resources.table_name, Item=connection_item(opening))

        def subject(i: int) -> None:
            response = app.lambda_handler(events[i], context)
            assert response["statusCode"] == 200, response

        def floor(i: int) -> None:
            dynamodb.transact_write_items(TransactItems=floor_requests[i])
            events_client.put_events(Entries=floor_forwards[i])
            dynamodb.update_item(TableName=resources.table_name, **floor_clears[i])

        def between(i: int) -> None:
            # moto copies a table for every transaction: keep it at a steady few items so both sides pay the same.
            for event_id in (f"bench-evt-{i}", f"floor-evt-{i}"):
                dynamodb.delete_item(TableName=resources.table_name, Key=event_key(event_id))

        # Lambda writes logs and metrics to stdout; here they go to memory, for the subject as in Lambda.
        from connection_repair.platform.observability import logger

        logger.registered_handler.setStream(io.StringIO())  # type: ignore[attr-defined]
        with contextlib.redirect_stdout(io.StringIO()):
            result = compare(
                "webhook_ingest_vs_bare_transaction",
                subject,
                floor,
                target=1.3,
                iterations=ITERATIONS,
                warmup=WARMUP,
                between=between,
            )
    return result


if __name__ == "__main__":
    comparison = main()
    print(comparison.line())
    record([comparison])
    sys.exit(0)
