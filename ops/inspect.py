"""`make inspect CONNECTION=<id>` / `make inspect CUSTOMER=<externalCustomerId>` [`STACK=<name>`]: one connection's
history, in order, from what the table holds: every stored event (Meld's webhooks of every type, what reconciliation
read back, a replacement) with Meld's eventId, its outcome and the state it left; the episodes it opened and closed;
each message claimed for them and what became of it; and the connection as it is now (repairs included).

Outcomes are read as ingestion decides them: an event older (by Meld's time, then id) than one applied before it
arrived is stale; a COMPLETED is never ordered; an event without a connection change is ignored. Redeliveries of a
stored event are answered as duplicates and not stored again: the event's ``retryCount`` is Meld's count of them
when it was stored.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connection_repair.adapters.dynamodb.connections import connection_from_item, customer_connections_query
from connection_repair.adapters.dynamodb.history import DynamoDBConnectionHistory
from connection_repair.adapters.dynamodb.keys import connection_key, customer_partition, from_item
from connection_repair.adapters.dynamodb.paging import query_items
from connection_repair.domain.connection import Connection, event_order_key
from connection_repair.outbox.ports import StoredEvent
from connection_repair.reconcile.observation import OBSERVED
from connection_repair.replay.recompute import change_of
from connection_repair.replay.service import REPLAYED
from ops.stack import Stack, options, run_tool, stack_of


@dataclass(frozen=True)
class Line:
    at: datetime
    text: str


def _query(client: Any, **query: Any) -> list[dict[str, Any]]:
    return list(query_items(client, query))


def _what(event: StoredEvent) -> tuple[str, str | None, bool]:
    """What the event says (for the timeline), its order key when it is ordered, and whether it changes the
    connection."""
    body = _body(event)
    if event.event_type == REPLAYED:
        changes = body.get("changes") or {}
        changed = ", ".join(f"{name} {change.get('from')} -> {change.get('to')}" for name, change in changes.items())
        return f"replayed from {body.get('replayOf')}: {changed}", None, True
    if event.event_type == "CONNECTION_SUPERSEDED":
        return f"replaced by {event.event_id.rsplit('#', 1)[-1]}", None, True
    change = change_of(event)
    if change is None:
        return event.event_type, None, False
    if event.event_type == OBSERVED:
        status = f"{change.status}/{change.status_reason}"
        text = f"reconciliation read {status} (drift: {body.get('drift') or 'none'})"
        return text, event_order_key(event.event_time, event.event_id), True
    if not change.carries_status:
        return f"{event.event_type} (the customer finished the widget)", None, True
    status = f"{change.status}/{change.status_reason}" if change.status_reason else str(change.status)
    return f"{event.event_type} {status}", event_order_key(event.event_time, event.event_id), True


def _body(event: StoredEvent) -> dict[str, Any]:
    try:
        body = json.loads(event.raw_body)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def event_lines(events: list[StoredEvent]) -> list[Line]:
    """Each event at the time it was received, with its outcome as ingestion decided it."""
    lines: list[Line] = []
    newest: str | None = None
    for event in sorted(events, key=lambda stored: (stored.received_at, stored.event_id)):
        text, order, changes = _what(event)
        if not changes:
            outcome = "ignored"
        elif order is not None and newest is not None and order <= newest:
            outcome = "stale: older than what was applied"
        else:
            outcome = "accepted"
            newest = order if order is not None and (newest is None or order > newest) else newest
        retries = f", Meld's retry {event.retry_count}" if event.retry_count else ""
        pending = f", {len(event.pending)} bus event(s) still to publish" if event.pending else ""
        lines.append(
            Line(
                event.received_at,
                f"event {event.event_id} ({event.event_time.isoformat()}): {text} -> {outcome}{retries}{pending}",
            )
        )
    return lines


def notification_lines(client: Any, table: str, connection: Connection) -> list[Line]:
    """The episodes of the connection that reached the notifier, and each message claimed for them."""
    if connection.external_customer_id is None:
        return []
    items = [
        from_item(item)
        for item in _query(
            client,
            TableName=table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :notify)",
            ExpressionAttributeValues={
                ":pk": customer_partition(connection.external_customer_id),
                ":notify": {"S": "NOTIFY#"},
            },
        )
    ]
    episodes = {
        item["episodeId"]: item
        for item in items
        if item["sk"].startswith("NOTIFY#EPISODE#") and item.get("connectionId") == connection.connection_id
    }
    lines: list[Line] = []
    for episode_id, episode in episodes.items():
        opened = f"episode {episode_id} ({episode.get('action')}): the notifier registered it"
        lines.append(Line(datetime.fromisoformat(episode["attentionSince"]), opened))
        if episode.get("closed"):
            ended = f"episode {episode_id} ended ({episode.get('resolution')}): {episode.get('messagesSent', 0)} sent"
            lines.append(Line(datetime.fromisoformat(episode["closedAt"]), ended))
        elif episode.get("dueAt"):
            due = f"episode {episode_id}: message #{episode.get('nextMessage', 0)} due"
            lines.append(Line(datetime.fromisoformat(episode["dueAt"]), due))
        lines += note_lines(episode_id, episode)
    for item in items:
        if not item["sk"].startswith("NOTIFY#MSG#"):
            continue
        _, _, episode_id, number = item["sk"].split("#", 3)
        if episode_id in episodes:
            done = f", {item['state']} at {item['doneAt']}" if "doneAt" in item else f", {item['state']}"
            if item.get("messageIds"):
                done += " (" + ", ".join(f"{channel} {sent}" for channel, sent in item["messageIds"].items()) + ")"
            claimed = f"message #{number} of episode {episode_id}: claimed{done}"
            lines.append(Line(datetime.fromisoformat(item["claimedAt"]), claimed))
    return lines


def note_lines(episode_id: str, episode: dict[str, Any]) -> list[Line]:
    """Why a message of the episode was deferred (the latest time) or never sent, as the notifier noted it."""
    lines: list[Line] = []
    for name, note in episode.items():
        kind, _, number = name.partition("#")
        if kind == "deferred":
            text = f"message #{number} of episode {episode_id}: deferred ({note['reason']}) until {note['until']}"
        elif kind == "skipped":
            text = f"message #{number} of episode {episode_id}: not sent ({note['reason']})"
        else:
            continue
        lines.append(Line(datetime.fromisoformat(note["at"]), text))
    return lines


def timeline(stack: Stack, connection_id: str) -> list[str]:
    client, table = stack.client("dynamodb"), stack.table_name()
    item = client.get_item(TableName=table, Key=connection_key(connection_id), ConsistentRead=True).get("Item")
    if item is None:
        return [f"no connection {connection_id} in {table}"]
    connection = connection_from_item(item)
    events = DynamoDBConnectionHistory(client, table).events_of(connection_id)
    lines = sorted(event_lines(events) + notification_lines(client, table, connection), key=lambda line: line.at)
    now = (
        f"now: {connection.status}/{connection.status_reason} action {connection.action.value}, customer "
        f"{connection.external_customer_id}, episode {connection.episode_id}, version {connection.version}; repairs "
        f"asked {connection.repair_attempts} (last {connection.last_repair_at}), pending {connection.repair_pending}, "
        f"failed {connection.failed_repairs}"
    )
    return [f"connection {connection_id}", *(f"{line.at.isoformat()}  {line.text}" for line in lines), now]


def customer_connections(stack: Stack, customer: str) -> list[str]:
    items = _query(stack.client("dynamodb"), **customer_connections_query(stack.table_name(), customer))
    return sorted(item["connectionId"]["S"] for item in items)


USAGE = "usage: make inspect CONNECTION=<connectionId> | CUSTOMER=<externalCustomerId> [STACK=<deployed stack>]"


def main(argv: list[str], stack: Stack | None = None) -> int:
    given = options(argv)
    if ("CONNECTION" in given) == ("CUSTOMER" in given):
        print(USAGE, file=sys.stderr)
        return 2
    stack = stack or stack_of(given.get("STACK"))
    connections = [given["CONNECTION"]] if "CONNECTION" in given else customer_connections(stack, given["CUSTOMER"])
    if not connections:
        print(f"no connection of customer {given['CUSTOMER']}")
        return 1
    for connection_id in connections:
        print("\n".join(timeline(stack, connection_id)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main, sys.argv[1:]))
