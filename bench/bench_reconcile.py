"""Reconciliation at 10 000 connections: drift found equals drift injected, and Meld is asked no more than needed.

The Meld simulator (in this process, over HTTP on loopback) holds 10 000 connections whose webhooks were all lost;
our table (moto, in-process) holds what the webhooks had said before Meld's state moved on:
- 1 % missed breaks: ACTIVE here, RECONNECT_REQUIRED at Meld;
- 1 % missed repairs: an episode open here, ACTIVE at Meld;
- 50 broken connections we never heard of;
- 1 % broken at both ends (listed, nothing to do), the rest ACTIVE at both ends.

The real Reconciler (drift mode) runs once on the real adapters. Targets: the drift found by kind equals the drift
injected, exactly; Meld requests / (listing pages + individual reads the design needs) <= 1.05, where the design
needs ceil(listed / 100) pages and one read per connection open here that the listing does not return. The run's
time is printed (moto's and the simulator's, not AWS's or Meld's).

Run: PYTHONPATH=layers/common:. .venv/bin/python -m bench.bench_reconcile
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.offline import use_fake_aws

use_fake_aws(POWERTOOLS_LOG_LEVEL="WARNING")

import boto3
import httpx
from moto import mock_aws

from bench.harness import record
from bench.moto_speedups import journal_transactions
from connection_repair.adapters.dynamodb.connection_store import DynamoDBConnectionStore
from connection_repair.adapters.dynamodb.connections import connection_item
from connection_repair.adapters.dynamodb.reconciliation import DynamoDBKnownConnections, DynamoDBProgressStore
from connection_repair.adapters.eventbridge import EventBridgePublisher
from connection_repair.adapters.meld.client import MeldClient
from connection_repair.adapters.meld.gateway import MeldConnectionListing
from connection_repair.domain.connection import Connection
from connection_repair.domain.status_policy import Action
from connection_repair.ingestion.ingest import EventIngestor
from connection_repair.reconcile.drift import LISTED_STATUSES, DriftKind
from connection_repair.reconcile.ports import Mode
from connection_repair.reconcile.service import PAGE_SIZE, Reconciler
from local.aws_resources import create_resources
from local.meld_simulator import MeldSimulator, SimulatorConfig
from local.meld_simulator.faults import parse_fault

CONNECTIONS = 10_000
SHARE = 0.01
UNKNOWN = 50
API_KEY = "bench-meld-key"
BEFORE = datetime.now(UTC) - timedelta(days=2)
TARGET = 1.05


class Counting(httpx.BaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return self.inner.handle_request(request)


def ours(connection_id: str, customer: str, *, broken: bool) -> Connection:
    return Connection(
        connection_id=connection_id,
        external_customer_id=customer,
        institution_id="inst-1",
        institution_name="Chase",
        status="RECONNECT_REQUIRED" if broken else "ACTIVE",
        status_reason="LOGIN_REQUIRED" if broken else None,
        action=Action.REPAIR if broken else Action.NONE,
        episode_id=f"ep-{connection_id}" if broken else None,
        episode_action=Action.REPAIR if broken else None,
        attention_since=BEFORE if broken else None,
        last_event_at=BEFORE,
        last_event_id=f"evt-{connection_id}",
        version=2,
    )


def seed(simulator: MeldSimulator, dynamodb: Any, table: str) -> dict[str, int]:
    """Meld's connections and ours; returns the drift injected by kind and what the design needs to read."""
    drifted = int(CONNECTIONS * SHARE)
    # Every webhook of the seeding is lost: 2 per connection created (COMPLETED and its STATUS_CHANGE).
    simulator.faults.add(parse_fault({"endpoint": "webhooks", "mode": "drop", "count": 2 * (CONNECTIONS + UNKNOWN)}))
    items: list[dict[str, Any]] = []
    listed = open_not_listed = 0
    for index in range(CONNECTIONS + UNKNOWN):
        missed_break = index < drifted
        missed_repair = drifted <= index < 2 * drifted
        both_broken = 2 * drifted <= index < 3 * drifted
        unknown = index >= CONNECTIONS
        broken_at_meld = missed_break or both_broken or unknown
        status, reason = ("RECONNECT_REQUIRED", "LOGIN_REQUIRED") if broken_at_meld else ("ACTIVE", None)
        customer = f"customer-{index}"
        created = simulator.backend.sim_create(
            {"externalCustomerId": customer, "institutionName": "Chase", "status": status, "statusReason": reason}
        )
        listed += status in LISTED_STATUSES
        if unknown:
            continue
        open_here = missed_repair or both_broken
        open_not_listed += open_here and status not in LISTED_STATUSES
        items.append(connection_item(ours(created["id"], customer, broken=open_here)))
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        dynamodb.batch_write_item(RequestItems={table: batch})
    return {
        DriftKind.MISSED_BREAK: drifted,
        DriftKind.MISSED_REPAIR: drifted,
        DriftKind.UNKNOWN_CONNECTION: UNKNOWN,
        "pages": math.ceil(listed / PAGE_SIZE),
        "reads": open_not_listed,
    }


def main() -> None:
    journal_transactions()
    config = SimulatorConfig(api_key=API_KEY, webhook_url="http://127.0.0.1:9/unreachable", port=0)
    with mock_aws(), MeldSimulator(config) as simulator:
        resources = create_resources()
        dynamodb = boto3.client("dynamodb")
        started = time.perf_counter()
        injected = seed(simulator, dynamodb, resources.table_name)
        print(f"seeded {CONNECTIONS + UNKNOWN} connections in {time.perf_counter() - started:.1f} s")
        counting = Counting()
        meld = MeldConnectionListing(MeldClient(simulator.base_url, lambda: API_KEY, transport=counting))
        events = EventIngestor(
            store=DynamoDBConnectionStore(dynamodb, resources.table_name, event_ttl=timedelta(days=90)),
            publisher=EventBridgePublisher(boto3.client("events"), resources.event_bus_name, "connection-repair"),
            directory=lambda: meld,
        )
        reconciler = Reconciler(
            meld=meld,
            known=DynamoDBKnownConnections(dynamodb, resources.table_name),
            progress=DynamoDBProgressStore(dynamodb, resources.table_name),
            events=events,
            clock=lambda: datetime.now(UTC),
            reserve_seconds=0,
        )
        started = time.perf_counter()
        outcome = reconciler.run(Mode.DRIFT, remaining_seconds=lambda: 900)
        seconds = time.perf_counter() - started

    needed = injected["pages"] + injected["reads"]
    found = {kind.value: outcome.drift[kind] for kind in DriftKind}
    expected = {kind.value: injected[kind] for kind in DriftKind}
    ratio = round(counting.requests / needed, 3)
    exact = found == expected and outcome.complete
    print(f"drift injected {expected}")
    print(f"drift found    {found}  exact: {'ok' if exact else 'MISSED'}")
    print(
        f"Meld requests {counting.requests} / needed {needed} ({injected['pages']} pages + {injected['reads']} reads)"
        f" = {ratio} (target <= {TARGET}) {'ok' if ratio <= TARGET else 'MISSED'}"
    )
    print(f"reconcile run: {seconds:.1f} s for {CONNECTIONS + UNKNOWN} connections at Meld (moto + simulator)")
    record(
        [],
        extra={
            "reconcile": {
                "connections": CONNECTIONS + UNKNOWN,
                "drift_injected": expected,
                "drift_found": found,
                "drift_exact": exact,
                "meld_requests": counting.requests,
                "requests_needed": needed,
                "requests_over_needed": ratio,
                "requests_target": TARGET,
                "seconds": round(seconds, 2),
            }
        },
    )
    if not exact or ratio > TARGET:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
