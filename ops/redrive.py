"""`make redrive QUEUE=notifier|replacer [APPLY=1] [STACK=<name>]`: a dead-letter queue's messages, listed, and with
``APPLY=1`` sent back where they came from, each once.

- ``notifier``: ``NotifierDeadLetterQueue`` holds the bus events the notifier failed on (each as the EventBridge event
  it was): each goes back to ``NotifierQueue``, then leaves the dead-letter queue. The notifier is idempotent per
  episode and message: a redriven event sends nothing twice.
- ``replacer``: ``ConnectionReplacerDeadLetterQueue`` holds Lambda's failure records of the replacer's asynchronous
  invocations (the bus event under ``requestPayload``) and the bus events EventBridge could not deliver to it: each
  bus event is given to the replacer again, synchronously, and leaves the dead-letter queue only if the replacer
  handled it; one that fails again stays (and is reported).

A message leaves the dead-letter queue only after it reached its destination: a tool stopped in between leaves it
to be moved again, which both destinations absorb.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ops.stack import Stack, options, run_tool, stack_of

# Long enough to move a batch before the messages are visible again (and listed twice).
VISIBILITY_SECONDS = 120


@dataclass(frozen=True)
class DeadLetterQueue:
    queue: str  # logical id
    back_to_queue: str | None = None
    back_to_function: str | None = None


QUEUES = {
    "notifier": DeadLetterQueue("NotifierDeadLetterQueue", back_to_queue="NotifierQueue"),
    "replacer": DeadLetterQueue("ConnectionReplacerDeadLetterQueue", back_to_function="ConnectionReplacerFunction"),
}


@dataclass
class Redrive:
    listed: list[dict[str, Any]] = field(default_factory=list)
    moved: int = 0
    failed: list[str] = field(default_factory=list)


def bus_event(body: str) -> dict[str, Any]:
    """The bus event a dead letter holds: a Lambda failure record's ``requestPayload``, or the message itself."""
    document: dict[str, Any] = json.loads(body)
    payload = document.get("requestPayload")
    return payload if isinstance(payload, dict) else document


def dead_letters(sqs: Any, url: str) -> Iterator[dict[str, Any]]:
    """Each message of the queue once (hidden while this runs, so that no batch repeats one)."""
    seen: set[str] = set()
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=VISIBILITY_SECONDS, WaitTimeSeconds=0
    ).get("Messages", []):
        fresh = [message for message in batch if message["MessageId"] not in seen]
        if not fresh:
            return
        for message in fresh:
            seen.add(message["MessageId"])
            yield message


def redrive(stack: Stack, which: DeadLetterQueue, *, apply: bool) -> Redrive:
    sqs = stack.client("sqs")
    source = stack.queue_url(which.queue)
    result = Redrive()
    kept: list[str] = []
    for message in dead_letters(sqs, source):
        event = bus_event(message["Body"])
        result.listed.append(event)
        if apply and _send_back(stack, which, message["Body"], event, result):
            sqs.delete_message(QueueUrl=source, ReceiptHandle=message["ReceiptHandle"])
            result.moved += 1
        else:
            kept.append(message["ReceiptHandle"])
    for handle in kept:
        # Listed, or failed again: back in the queue now, not when this run's hold on it would have ended.
        sqs.change_message_visibility(QueueUrl=source, ReceiptHandle=handle, VisibilityTimeout=0)
    return result


def _send_back(stack: Stack, which: DeadLetterQueue, body: str, event: dict[str, Any], result: Redrive) -> bool:
    if which.back_to_queue is not None:
        stack.client("sqs").send_message(QueueUrl=stack.queue_url(which.back_to_queue), MessageBody=body)
        return True
    assert which.back_to_function is not None
    answer = stack.client("lambda").invoke(
        FunctionName=stack.function_name(which.back_to_function), Payload=json.dumps(event).encode()
    )
    if "FunctionError" in answer:
        result.failed.append(f"{event.get('id', '?')}: {answer['Payload'].read().decode()}")
        return False
    return True


def describe(event: dict[str, Any]) -> str:
    detail = event.get("detail") or {}
    return " ".join(
        str(part)
        for part in (event.get("time"), event.get("detail-type"), detail.get("connectionId"), detail.get("eventId"))
        if part
    )


USAGE = "usage: make redrive QUEUE=notifier|replacer [APPLY=1] [STACK=<deployed stack name>]"


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2, 3) or argv[0] not in QUEUES:
        print(USAGE, file=sys.stderr)
        return 2
    given = options(argv[1:])
    apply = given.get("APPLY", "0") != "0"
    result = redrive(stack_of(given.get("STACK")), QUEUES[argv[0]], apply=apply)
    for event in result.listed:
        print(describe(event))
    if not apply:
        print(f"{len(result.listed)} message(s) in the dead-letter queue; APPLY=1 sends them back")
        return 0
    print(f"{result.moved} of {len(result.listed)} message(s) sent back")
    for failure in result.failed:
        print(f"failed again, left in the dead-letter queue: {failure}", file=sys.stderr)
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(run_tool(main, sys.argv[1:]))
