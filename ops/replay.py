"""`make replay CONNECTION=<id> | SINCE=<time> [APPLY=1] [STACK=<name>]`: after a logic fix, recompute connections
from their stored events with the logic deployed now and say what would change; with ``APPLY=1`` write it and
announce what changed, once (docs/operations.md, Replay).

``SINCE`` replays every connection that received an event at or after that time (ISO 8601; a time without an offset
is UTC), the connections the fixed logic may have got wrong. It reads the whole table's stored events to find them.
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import UTC, datetime

from connection_repair.platform.settings import ReplaySettings
from connection_repair.replay.service import ConnectionReplay, Outcome, Replayed
from connection_repair.wiring.replay import connection_replay
from ops.stack import Stack, options, run_tool, stack_of

USAGE = "usage: make replay CONNECTION=<connectionId> | SINCE=<ISO 8601 time> [APPLY=1] [STACK=<deployed stack>]"


def replay_of(stack: Stack) -> ConnectionReplay:
    # The settings the deployed webhook recomputes with, so a replay decides as a webhook would.
    settings = ReplaySettings.from_env(stack.function_environment("WebhookFunction"))
    return connection_replay(stack.client("dynamodb"), stack.client("events"), settings)


def describe(replayed: Replayed) -> str:
    line = f"{replayed.connection_id}: {replayed.outcome.value}"
    if replayed.reason:
        line += f" ({replayed.reason})"
    for name, (old, new) in replayed.differences.items():
        line += f"\n  {name}: {old} -> {new}"
    if replayed.announcements:
        verb = "announced" if replayed.outcome == Outcome.CHANGED else "would announce"
        line += f"\n  {verb}: {', '.join(replayed.announcements)}"
    if replayed.publish_deferred:
        line += "\n  the bus refused them for now: the outbox sweep publishes them within minutes"
    return line


def since_time(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def main(argv: list[str], stack: Stack | None = None) -> int:
    given = options(argv)
    if ("CONNECTION" in given) == ("SINCE" in given):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        since = since_time(given["SINCE"]) if "SINCE" in given else None
    except ValueError:
        print(f"SINCE={given['SINCE']!r} is not an ISO 8601 time (e.g. 2026-12-01T09:00:00Z)\n{USAGE}", file=sys.stderr)
        return 2
    apply = given.get("APPLY", "0") != "0"
    replay = replay_of(stack or stack_of(given.get("STACK")))
    connections = [given["CONNECTION"]] if since is None else replay.connections_since(since)
    outcomes: Counter[Outcome] = Counter()
    for connection_id in connections:
        replayed = replay.replay(connection_id, apply=apply)
        outcomes[replayed.outcome] += 1
        print(describe(replayed))
    summary = ", ".join(f"{outcomes[outcome]} {outcome.value}" for outcome in Outcome if outcomes[outcome])
    print(f"{len(connections)} connection(s) replayed: {summary or 'none had events'}")
    if outcomes[Outcome.WOULD_CHANGE]:
        print("nothing written: APPLY=1 writes these changes and announces them")
    return 1 if outcomes[Outcome.UNKNOWN] or outcomes[Outcome.RACED] else 0


if __name__ == "__main__":
    sys.exit(run_tool(main, sys.argv[1:]))
