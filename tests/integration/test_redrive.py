"""`make redrive` on moto: a dead-letter queue's messages are listed without moving them, and with APPLY each goes
back where it came from once, leaving the dead-letter queue only once it got there."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from local.aws_resources import LocalResources, provision
from local.template import Resolver, load_template
from ops.redrive import QUEUES, bus_event, main, redrive
from tests.ops_support import MotoStack


@pytest.fixture
def stack(aws: LocalResources) -> MotoStack:
    resolver = Resolver(load_template())
    provision(resolver)
    return MotoStack(resolver)


def notifier_event(number: int) -> dict[str, Any]:
    return {
        "id": f"bus-{number}",
        "detail-type": "Connection Needs Attention",
        "time": "2026-11-25T11:00:00Z",
        "detail": {"connectionId": f"conn-{number}", "eventId": f"evt-{number}"},
    }


def bodies(stack: MotoStack, logical_id: str) -> list[str]:
    sqs, url = boto3.client("sqs"), stack.queue_url(logical_id)
    found = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            found.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def dead_letter(stack: MotoStack, logical_id: str, body: dict[str, Any]) -> None:
    boto3.client("sqs").send_message(QueueUrl=stack.queue_url(logical_id), MessageBody=json.dumps(body))


def test_listing_moves_nothing_and_leaves_every_message_ready_to_move(stack: MotoStack) -> None:
    for number in range(3):
        dead_letter(stack, "NotifierDeadLetterQueue", notifier_event(number))

    listed = redrive(stack, QUEUES["notifier"], apply=False)
    # At once, not after the listing's hold on them: an operator lists, then applies
    again = redrive(stack, QUEUES["notifier"], apply=False)

    assert sorted(event["id"] for event in listed.listed) == ["bus-0", "bus-1", "bus-2"]
    assert (listed.moved, len(again.listed)) == (0, 3)
    assert bodies(stack, "NotifierQueue") == []


def test_the_notifiers_dead_letters_go_back_to_its_queue_each_once(stack: MotoStack) -> None:
    sent = [notifier_event(number) for number in range(12)]  # more than one receive's batch
    for event in sent:
        dead_letter(stack, "NotifierDeadLetterQueue", event)

    first = redrive(stack, QUEUES["notifier"], apply=True)
    second = redrive(stack, QUEUES["notifier"], apply=True)

    assert (first.moved, second.moved, first.failed) == (12, 0, [])
    assert sorted(json.loads(body)["id"] for body in bodies(stack, "NotifierQueue")) == sorted(e["id"] for e in sent)
    assert bodies(stack, "NotifierDeadLetterQueue") == []


def test_a_lambda_failure_record_gives_back_the_bus_event_it_holds() -> None:
    event = {"id": "bus-1", "detail-type": "Connection Replaced", "detail": {"connectionId": "conn-new"}}
    record = {"version": "1.0", "requestContext": {"condition": "RetriesExhausted"}, "requestPayload": event}

    assert bus_event(json.dumps(record)) == event
    assert bus_event(json.dumps(event)) == event  # EventBridge's own dead letter: the event as it was


def test_the_command_says_how_to_use_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["everything"]) == 2
    assert "QUEUE=notifier|replacer" in capsys.readouterr().err
