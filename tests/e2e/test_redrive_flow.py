"""`make redrive QUEUE=replacer` against the running local stack: the replacer's dead letters are handled again by
the real function, and leave the dead-letter queue only when it handled them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ops.redrive import QUEUES, redrive
from ops.stack import LocalStack
from tests.e2e.conftest import RunningStack
from tests.support import load_event

pytestmark = pytest.mark.e2e


def messages(stack: LocalStack, logical_id: str) -> int:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.queue_url(logical_id),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def failure_record(event: dict[str, Any]) -> str:
    """What Lambda puts in the dead-letter queue once an asynchronous invocation failed on every retry."""
    return json.dumps(
        {
            "version": "1.0",
            "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": event,
            "responsePayload": {"errorType": "MeldUnavailable"},
        }
    )


def test_the_replacers_dead_letters_are_handled_again_and_only_the_handled_leave(stack: RunningStack) -> None:
    ops = LocalStack(stack.config)
    dead_letters = ops.queue_url("ConnectionReplacerDeadLetterQueue")
    sqs = ops.client("sqs")
    handled = load_event("connection_replacer_connection_replaced")
    broken = handled | {"detail": {"connectionId": "conn-new"}}  # no replaced connection: the replacer refuses it
    sqs.send_message(QueueUrl=dead_letters, MessageBody=failure_record(handled))
    sqs.send_message(QueueUrl=dead_letters, MessageBody=failure_record(broken))

    result = redrive(ops, QUEUES["replacer"], apply=True)

    assert (result.moved, len(result.failed)) == (1, 1)
    assert messages(ops, "ConnectionReplacerDeadLetterQueue") == 1  # the one that failed again, ready to move again
    [left] = redrive(ops, QUEUES["replacer"], apply=False).listed
    assert left == broken
