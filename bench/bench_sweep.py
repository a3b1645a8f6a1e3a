"""The reminder sweep reads only what is due: items read and sweep time, at 10 000 and 100 000 connections.

Targets: with 1 % of 100 000 connections due, items read per sweep <= 1.05 x the due count; sweep time at
100 000 connections within 1.2 x the time at 10 000 with the same due count (1 000).

Runs the real notifier (DynamoDB store, SES v2 email channel) on moto in-process, seeded with batch_write_item:
N connections, 5 % of them in an open episode whose next reminder is days away (in the sparse index, not due),
and 1 000 due first messages (one per customer, with preferences). Each repetition seeds a fresh due set and sweeps.

Two moto artefacts, stated rather than hidden:
- moto snapshots the *whole table* (deepcopy) before every TransactWriteItems, to roll back on failure; real
  DynamoDB's cost does not depend on the table's size. The bench replaces that snapshot with a journal of the items
  each transaction names (``bench.moto_speedups.journal_transactions``, rollback kept), shared with the throughput
  bench.
- moto answers a GSI Query by walking every item of the table; DynamoDB reads the key range. So the *query* time
  below grows with the table in moto although the items read (ScannedCount) do not; it is printed separately.
- moto keeps the table in this process, millions of objects at 100 000 connections, which Python's garbage
  collector walks on each full collection; no Lambda's heap holds the table. The seeded table is frozen out of the
  collector (``gc.freeze``) before the sweeps are timed.

Run: `make bench-sweep` (or PYTHONPATH=layers/common:. .venv/bin/python -m bench.bench_sweep [--small])
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.offline import use_fake_aws

use_fake_aws(POWERTOOLS_LOG_LEVEL="WARNING")

import boto3
from moto import mock_aws

from bench.harness import record
from bench.moto_speedups import journal_transactions
from connection_repair.adapters.dynamodb.connections import DynamoDBConnectionReader, connection_item
from connection_repair.adapters.dynamodb.keys import preferences_key
from connection_repair.adapters.dynamodb.notification_items import SWEEP_WATERMARK_KEY, due_day, episode_item
from connection_repair.adapters.dynamodb.notifications import DynamoDBNotificationStore
from connection_repair.adapters.dynamodb.preferences import DynamoDBPreferencesStore
from connection_repair.adapters.ses import SesEmailChannel
from connection_repair.domain.connection import Connection
from connection_repair.domain.status_policy import Action
from connection_repair.notify.compose import MessageComposer
from connection_repair.notify.ports import NotificationChannel
from connection_repair.notify.records import EpisodeNotice
from connection_repair.notify.service import Notifier
from connection_repair.preferences.model import Channel
from local.aws_resources import create_resources

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DUE = 1_000
NOT_DUE_SHARE = 0.05
REPETITIONS = 3
SENDER = "notifications@bench.example.com"


def _write(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        client.batch_write_item(RequestItems={table: batch})


def _connection(index: int, *, episode: str | None, since: datetime) -> Connection:
    return Connection(
        connection_id=f"conn-{index}",
        external_customer_id=f"cust-{index}",
        institution_id="inst-1",
        institution_name="Chase",
        status="RECONNECT_REQUIRED" if episode else "ACTIVE",
        status_reason="LOGIN_REQUIRED" if episode else None,
        action=Action.REPAIR if episode else Action.NONE,
        episode_id=episode,
        episode_action=Action.REPAIR if episode else None,
        attention_since=since if episode else None,
        version=1,
    )


def _notice(index: int, episode: str, *, since: datetime, due: datetime, number: int) -> EpisodeNotice:
    return EpisodeNotice(
        episode_id=episode,
        connection_id=f"conn-{index}",
        external_customer_id=f"cust-{index}",
        institution_name="Chase",
        action=Action.REPAIR,
        status="RECONNECT_REQUIRED",
        status_reason="LOGIN_REQUIRED",
        attention_since=since,
        next_message=number,
        due_at=due,
    )


def _preferences(index: int) -> dict[str, Any]:
    return preferences_key(f"cust-{index}") | {
        "externalCustomerId": {"S": f"cust-{index}"},
        "email": {"S": f"customer{index}@example.com"},
        "channels": {"L": [{"S": "EMAIL"}]},
        "timezone": {"S": "UTC"},
        "optedOut": {"BOOL": False},
        "newAccountsOptIn": {"BOOL": False},
        "updatedAt": {"S": "2026-11-01T00:00:00Z"},
    }


def seed_background(client: Any, table: str, total: int) -> None:
    """``total`` connections; 5 % in an open episode whose next reminder is a day away (indexed, not due)."""
    items: list[dict[str, Any]] = []
    every = int(1 / NOT_DUE_SHARE)
    since = NOW - timedelta(hours=2)
    for index in range(total):
        episode = f"ep-bg-{index}" if index % every == 0 else None
        items.append(connection_item(_connection(index, episode=episode, since=since)))
        if episode:
            items.append(episode_item(_notice(index, episode, since=since, due=NOW + timedelta(days=1), number=1)))
    # A stack that has swept before: the sweep reads from today (a first sweep ever reads 180 days back, once).
    items.append(
        SWEEP_WATERMARK_KEY | {"day": {"S": due_day(NOW).isoformat()}, "shardedFrom": {"S": due_day(NOW).isoformat()}}
    )
    _write(client, table, items)


def seed_due(client: Any, table: str, *, first: int, round_number: int) -> None:
    """``DUE`` connections that broke 10 minutes ago (first message due), customers with an email on file."""
    items: list[dict[str, Any]] = []
    since = NOW - timedelta(minutes=10)
    for index in range(first, first + DUE):
        episode = f"ep-due-{round_number}-{index}"
        items.append(connection_item(_connection(index, episode=episode, since=since)))
        items.append(episode_item(_notice(index, episode, since=since, due=NOW - timedelta(minutes=5), number=0)))
        items.append(_preferences(index))
    _write(client, table, items)


def measure(total: int) -> dict[str, float]:
    with mock_aws():
        resources = create_resources(stack_name=f"bench-{total}")
        client = boto3.client("dynamodb")
        boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
        started = time.perf_counter()
        seed_background(client, resources.table_name, total)
        seeded = time.perf_counter() - started
        # The seeded table lives in this process only because moto emulates DynamoDB here; keep the garbage
        # collector from walking its millions of objects on every full collection, as no Lambda heap holds them.
        gc.collect()
        gc.freeze()
        store = DynamoDBNotificationStore(client, resources.table_name)
        channels: dict[Channel, NotificationChannel] = {Channel.EMAIL: SesEmailChannel(boto3.client("sesv2"), SENDER)}
        notifier = Notifier(
            connections=DynamoDBConnectionReader(client, resources.table_name),
            preferences=DynamoDBPreferencesStore(client, resources.table_name),
            store=store,
            channels=channels,
            composer=MessageComposer(
                "https://app.example.com/c/{connectionId}", settings_url="https://app.example.com/s"
            ),
            clock=lambda: NOW,
        )
        sweeps: list[float] = []
        queries: list[float] = []
        reads: list[int] = []
        for round_number in range(REPETITIONS):
            # Distinct customers per round (no daily cap in the way): indexes past the background ones
            seed_due(client, resources.table_name, first=total + round_number * DUE, round_number=round_number)
            started = time.perf_counter()
            store.due_episodes(NOW, limit=10 * DUE)
            queries.append(time.perf_counter() - started)
            started = time.perf_counter()
            outcome = notifier.sweep(max_items=10 * DUE)
            sweeps.append(time.perf_counter() - started)
            reads.append(store.last_read_count)
            if outcome.messages_sent != DUE or outcome.failures or outcome.deferred:
                raise SystemExit(f"sweep did not send every due message: {outcome}")
        gc.unfreeze()
        return {
            "total": total,
            "due": DUE,
            "items_read": max(reads),
            "sweep_s": statistics.median(sweeps),
            "query_s": statistics.median(queries),
            "seed_s": seeded,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--small", action="store_true", help="1 000 and 10 000 connections (a quick look)")
    arguments = parser.parse_args()
    journal_transactions()
    print("moto: whole-table snapshot per transaction replaced by a per-item journal (bench/moto_speedups.py)")
    sizes = (1_000 + DUE, 10_000) if arguments.small else (10_000, 100_000)
    results = [measure(size) for size in sizes]
    for result in results:
        print(
            f"connections {int(result['total']):>7}  due {int(result['due'])}  items read {int(result['items_read'])}"
            f"  sweep {result['sweep_s']:.3f} s (median of {REPETITIONS})  due query alone {result['query_s']:.3f} s"
            f"  (seeded in {result['seed_s']:.1f} s)"
        )
    small, large = results
    read_ratio = large["items_read"] / large["due"]
    time_ratio = large["sweep_s"] / small["sweep_s"]
    print(
        f"items read / due at {int(large['total'])}: {read_ratio:.3f} (target <= 1.05) {_verdict(read_ratio <= 1.05)}"
    )
    print(
        f"sweep time {int(large['total'])} / {int(small['total'])}: {time_ratio:.3f} (target <= 1.2) "
        f"{_verdict(time_ratio <= 1.2)}"
    )
    print(
        f"due query alone {int(large['total'])} / {int(small['total'])}: {large['query_s'] / small['query_s']:.2f} "
        "(moto walks the whole table per GSI query; DynamoDB reads only the key range)"
    )
    if arguments.small:
        return
    record(
        [],
        extra={
            "reminder_sweep": {
                "sizes": results,
                "items_read_over_due": round(read_ratio, 3),
                "items_read_target": 1.05,
                "sweep_time_ratio": round(time_ratio, 3),
                "sweep_time_target": 1.2,
                "met": read_ratio <= 1.05 and time_ratio <= 1.2,
            }
        },
    )


def _verdict(met: bool) -> str:
    return "ok" if met else "MISSED"


if __name__ == "__main__":
    main()
