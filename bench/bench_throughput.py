"""Webhook ingest throughput on one process, and the proof afterwards that nothing was lost or applied twice.

10 000 signed deliveries (``local.make_events.signed_event``) go through the real handler
(``functions/webhook_ingest/app.lambda_handler``) one after another, against moto in-process: status changes of
1 000 connections, most of them quiet (another reason for the same broken state, or active again: one write) and
about one in five a transition (a downstream event, published through EventBridge in moto). 1 % of the deliveries
are redeliveries of an earlier event (Meld's retries) and 10 % arrive after a newer event of the same connection.

Afterwards the table is scanned and compared with what the generator knows: every distinct event is stored exactly
once (one item per id, its raw body the one delivered, its outbox empty), duplicates stored nothing, and every
connection holds the status, reason and last event of its newest event. Downstream events are counted as
EventBridge accepted them (botocore hooks on the default session, which the function's events client inherits).

moto workaround, stated rather than hidden: moto deep-copies every table a TransactWriteItems touches (to roll back
on failure), so each transaction costs O(table) and this run O(n^2). ``bench.moto_speedups.journal_transactions``
(shared with bench_sweep) copies only the items the transaction names and restores them if it is cancelled, so
rollback still holds. The figure is moto's speed as much as ours (one moto call is ~1-4 ms of Python): it shows the
handler sustains its rate as the table grows, not what DynamoDB would allow.

Run: `make bench-throughput` (or PYTHONPATH=layers/common:. .venv/bin/python -m bench.bench_throughput [--events N])
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.offline import use_fake_aws

use_fake_aws(POWERTOOLS_LOG_LEVEL="INFO")

import boto3
from moto import mock_aws

from bench.harness import record
from bench.moto_speedups import journal_transactions
from connection_repair.ingestion.webhook import stored_body
from local.aws_resources import create_resources
from local.env_json import EVENTS_TOLERANCE_SECONDS
from local.make_events import LOCAL_WEBHOOK_SECRET, LOCAL_WEBHOOK_URL, signed_event
from tests.support import LambdaContext, status_change

T0 = datetime(2026, 11, 1, tzinfo=UTC)
# (status, reason): a connection moves between these; crossing ACTIVE <-> RECONNECT_REQUIRED is a transition.
ACTIVE = ("ACTIVE", None)
BROKEN = (("RECONNECT_REQUIRED", "LOGIN_REQUIRED"), ("RECONNECT_REQUIRED", "TOKEN_EXPIRED"))
TRANSITION_SHARE = 0.2
EVENTS = 10_000
WINDOW = 1_000


@dataclass(frozen=True)
class Delivery:
    event_id: str
    connection_id: str
    order: int  # position in the connection's own time order
    body: dict[str, Any]
    redelivery: bool = False


def _states(count: int, rng: random.Random) -> list[tuple[str, str | None]]:
    states: list[tuple[str, str | None]] = []
    current: tuple[str, str | None] = rng.choice((ACTIVE, *BROKEN))
    for _ in range(count):
        if rng.random() < TRANSITION_SHARE:
            current = rng.choice(BROKEN) if current == ACTIVE else ACTIVE
        elif current != ACTIVE:
            # Another reason for the same broken state: nothing downstream (the quiet, one-write path).
            current = BROKEN[1] if current == BROKEN[0] else BROKEN[0]
        states.append(current)
    return states


def generate(total: int, connections: int, seed: int) -> tuple[list[Delivery], dict[str, Delivery]]:
    """The delivery stream, and each connection's newest event (what its final state must be)."""
    rng = random.Random(seed)
    duplicates = total // 100
    distinct = total - duplicates
    per_connection: dict[str, list[Delivery]] = {}
    for index in range(distinct):
        connection_id = f"conn-{index % connections:05d}"
        per_connection.setdefault(connection_id, [])
    counts = Counter(f"conn-{index % connections:05d}" for index in range(distinct))
    for connection_id, count in counts.items():
        events = per_connection[connection_id]
        for order, (status, reason) in enumerate(_states(count, rng)):
            event_id = f"evt-{connection_id}-{order:04d}"
            moment = T0 + timedelta(minutes=order, milliseconds=rng.randrange(1000))
            timestamp = moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
            body = status_change(
                event_id,
                timestamp,
                status,
                reason,
                connection_id=connection_id,
                external_customer_id=f"customer-{connection_id}",
            )
            events.append(Delivery(event_id, connection_id, order, body))
    newest = {connection_id: events[-1] for connection_id, events in per_connection.items()}
    # 10 % late: swap non-overlapping neighbours, so the older of the two arrives after the newer.
    candidates = [(connection_id, i) for connection_id, events in per_connection.items() for i in range(len(events))]
    candidates = [(connection_id, i) for connection_id, i in candidates if i + 1 < len(per_connection[connection_id])]
    rng.shuffle(candidates)
    used: set[tuple[str, int]] = set()
    swaps = 0
    for connection_id, i in candidates:
        if swaps == total // 10:
            break
        if (connection_id, i) in used or (connection_id, i + 1) in used:
            continue
        events = per_connection[connection_id]
        events[i], events[i + 1] = events[i + 1], events[i]
        used.update({(connection_id, i), (connection_id, i + 1)})
        swaps += 1
    # Interleave the connections at random, each keeping its (perturbed) order.
    slots = [connection_id for connection_id, events in per_connection.items() for _ in events]
    rng.shuffle(slots)
    cursors = Counter[str]()
    stream: list[Delivery] = []
    for connection_id in slots:
        stream.append(per_connection[connection_id][cursors[connection_id]])
        cursors[connection_id] += 1
    # 1 % redeliveries of an earlier delivery, later in the stream (Meld retrying).
    for original_index in sorted(rng.sample(range(len(stream) - 1), duplicates), reverse=True):
        original = stream[original_index]
        redelivery = Delivery(original.event_id, original.connection_id, original.order, original.body, True)
        stream.insert(rng.randrange(original_index + 1, len(stream) + 1), redelivery)
    return stream, newest


def late_deliveries(stream: list[Delivery]) -> int:
    """First deliveries that arrive after a newer event of the same connection was delivered."""
    newest_seen: dict[str, int] = {}
    late = 0
    for delivery in stream:
        if delivery.redelivery:
            continue
        if delivery.order < newest_seen.get(delivery.connection_id, -1):
            late += 1
        newest_seen[delivery.connection_id] = max(delivery.order, newest_seen.get(delivery.connection_id, -1))
    return late


def scan(client: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items.extend(page["Items"])
    return items


def prove(
    items: list[dict[str, Any]], stream: list[Delivery], newest: dict[str, Delivery], raw_bodies: dict[str, str]
) -> dict[str, object]:
    """Compare the table with the generator; every check must hold (a failure stops the bench)."""
    from connection_repair.adapters.dynamodb.connections import connection_from_item
    from connection_repair.adapters.dynamodb.events import event_from_item

    events = [event_from_item(item) for item in items if item["pk"]["S"].startswith("EVENT#")]
    connections = {
        connection.connection_id: connection
        for connection in (connection_from_item(item) for item in items if item["pk"]["S"].startswith("CONN#"))
    }
    distinct_ids = {delivery.event_id for delivery in stream}
    stored_ids = Counter(event.event_id for event in events)
    wrong_state = [
        connection_id
        for connection_id, delivery in newest.items()
        if connection_id not in connections
        or (connections[connection_id].status, connections[connection_id].status_reason)
        != (delivery.body["payload"]["newStatus"], delivery.body["payload"]["statusReason"])
        or connections[connection_id].last_event_id != delivery.event_id
    ]
    checks: dict[str, object] = {
        "distinct_events": len(distinct_ids),
        "event_items": len(events),
        "every_event_stored_once": set(stored_ids) == distinct_ids and max(stored_ids.values()) == 1,
        # As delivered, but for the provider's access details (docs/decisions.md §11).
        "stored_bodies_are_the_delivered_ones": all(
            event.raw_body == stored_body(raw_bodies[event.event_id].encode()) for event in events
        ),
        "outboxes_empty": all(not event.pending for event in events),
        "connections": len(connections),
        "connections_hold_newest_state": not wrong_state and len(connections) == len(newest),
    }
    failed = [name for name, value in checks.items() if value is False]
    if failed:
        raise SystemExit(f"throughput proof FAILED: {failed} (wrong state: {wrong_state[:5]})")
    return checks


def run(total: int, connections: int, seed: int) -> dict[str, object]:
    stream, newest = generate(total, connections, seed)
    late = late_deliveries(stream)
    events = [signed_event(d.body, retry_count=1 if d.redelivery else 0) for d in stream]
    raw_bodies = {d.event_id: event["body"] for d, event in zip(stream, events, strict=True)}
    journal_transactions()
    with mock_aws():
        resources = create_resources(stack_name="bench-throughput")
        os.environ.update(
            TABLE_NAME=resources.table_name,
            EVENT_BUS_NAME=resources.event_bus_name,
            MELD_WEBHOOK_URL=LOCAL_WEBHOOK_URL,
            MELD_WEBHOOK_SECRET=LOCAL_WEBHOOK_SECRET,
            # signed_event signs at a fixed moment (events/README.md): a tolerance that reaches back to it.
            MELD_WEBHOOK_TOLERANCE_SECONDS=EVENTS_TOLERANCE_SECONDS,
        )
        from connection_repair.platform.observability import logger
        from connection_repair.wiring.webhook import webhook_ingestor
        from functions.webhook_ingest import app

        published: Counter[str] = Counter()

        def count_entries(params: dict[str, Any], **_: Any) -> None:
            published.update(entry["DetailType"] for entry in params["Entries"])

        def count_failures(parsed: dict[str, Any], **_: Any) -> None:
            published["failed"] += int(parsed.get("FailedEntryCount", 0))

        # On the default session, before the handler's clients exist: they inherit the hooks (wiring uses
        # boto3.client), so the count does not depend on how the ingestor holds its publisher.
        boto3.setup_default_session()
        session_events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
        session_events.register("provide-client-params.events.PutEvents", count_entries)
        session_events.register("after-call.events.PutEvents", count_failures)
        webhook_ingestor.cache_clear()
        context = LambdaContext()
        outcomes: Counter[str] = Counter()
        latencies: list[float] = []
        window_rates: list[float] = []
        # Logs and metrics are formatted as in Lambda, then dropped.
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            logger.registered_handler.setStream(sink)  # type: ignore[attr-defined]
            started = window_started = time.perf_counter()
            for index, event in enumerate(events, 1):
                before = time.perf_counter()
                response = app.lambda_handler(event, context)
                latencies.append((time.perf_counter() - before) * 1000)
                if response["statusCode"] != 200:
                    raise SystemExit(f"delivery {index} answered {response}")
                outcomes[json.loads(response["body"])["status"]] += 1
                if index % WINDOW == 0:
                    now = time.perf_counter()
                    window_rates.append(WINDOW / (now - window_started))
                    window_started = now
            elapsed = time.perf_counter() - started
        proof = prove(scan(boto3.client("dynamodb"), resources.table_name), stream, newest, raw_bodies)
    duplicates = sum(d.redelivery for d in stream)
    if outcomes["duplicate"] != duplicates or published["failed"]:
        raise SystemExit(f"throughput proof FAILED: outcomes {dict(outcomes)}, published {dict(published)}")
    ordered = sorted(latencies)
    return {
        "deliveries": len(stream),
        "connections": connections,
        "duplicates": duplicates,
        "late_deliveries": late,
        "seconds": round(elapsed, 2),
        "events_per_second": round(len(stream) / elapsed, 1),
        "window_events_per_second_min": round(min(window_rates), 1) if window_rates else None,
        "window_events_per_second_max": round(max(window_rates), 1) if window_rates else None,
        "latency_p50_ms": round(statistics.median(latencies), 3),
        "latency_p95_ms": round(ordered[int(0.95 * len(ordered))], 3),
        "outcomes": dict(outcomes),
        "downstream_published": sum(count for name, count in published.items() if name != "failed"),
        "downstream_by_type": {name: count for name, count in published.items() if name != "failed"},
        "proof": proof,
        "moto_workaround": "per-item transaction journal instead of moto's whole-table copy (bench/moto_speedups.py)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--connections", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=6)
    arguments = parser.parse_args()
    print("moto: whole-table snapshot per transaction replaced by a per-item journal (bench/moto_speedups.py)")
    result = run(arguments.events, arguments.connections, arguments.seed)
    print(
        f"webhook throughput: {result['events_per_second']} events/s sustained over {result['deliveries']} deliveries"
        f" in {result['seconds']} s (per {WINDOW}: min {result['window_events_per_second_min']}, "
        f"max {result['window_events_per_second_max']}); latency p50 {result['latency_p50_ms']} ms, "
        f"p95 {result['latency_p95_ms']} ms"
    )
    print(
        f"  {result['connections']} connections, {result['duplicates']} redeliveries, {result['late_deliveries']} "
        f"late; outcomes {result['outcomes']}; downstream published {result['downstream_published']} "
        f"{result['downstream_by_type']}"
    )
    print(f"  proof: {result['proof']}")
    if arguments.events < EVENTS:
        print("  (fewer events than the benchmark's 10 000: results.json left as it was)")
        return
    record([], extra={"webhook_throughput": result})


if __name__ == "__main__":
    main()
