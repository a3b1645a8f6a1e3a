"""The notifier behind its queue, on moto: the template's rule, queue and dead-letter queue, the real handler.

``QueueEventSource`` plays Lambda's SQS event source mapping (the local stack's); moto plays SQS, including the move to
the dead-letter queue past maxReceiveCount. The queue's 30-minute visibility timeout is set to 0 so that the tries of
hours happen in one test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import boto3
import pytest

from connection_repair.adapters.eventbridge import event_detail
from connection_repair.domain.bus_events import ConnectionNeedsAttention
from functions.notifier import app
from local.aws_resources import LocalResources, provision
from local.eventbridge import QueueEventSource
from local.functions import InvocationError
from local.make_notifier_events import BROKEN_AT
from local.template import QueueSource, Resolver, load_template
from tests.notifier_support import Clock, NotifierRig, attention, build_notifier, sent_emails
from tests.support import LambdaContext

MAX_RECEIVES = int(load_template()["Resources"]["NotifierQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"])


@dataclass
class QueuedNotifier:
    rig: NotifierRig
    source: QueueEventSource
    mapping: QueueSource
    bus: str
    queue_url: str
    dead_letter_url: str
    batches: list[dict[str, Any]]

    def publish(self, *details: dict[str, Any]) -> None:
        """Puts events on the app's bus as the webhook function does; the template's rule routes them."""
        entries = [
            {"Source": "connection-repair", "DetailType": ConnectionNeedsAttention.DETAIL_TYPE, "Detail": json.dumps(d)}
            for d in details
        ]
        for entry in entries:
            entry["EventBusName"] = self.bus
        assert boto3.client("events").put_events(Entries=entries)["FailedEntryCount"] == 0  # type: ignore[arg-type]

    def waiting(self) -> int:
        """Messages in the notifier's queue, in flight or not."""
        sqs = boto3.client("sqs")
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)["Attributes"]  # type: ignore[list-item]
        return sum(int(attributes[name]) for name in names)

    def parked(self) -> list[dict[str, Any]]:
        """The bodies in the dead-letter queue."""
        received = boto3.client("sqs").receive_message(QueueUrl=self.dead_letter_url, MaxNumberOfMessages=10)
        return [json.loads(message["Body"]) for message in received.get("Messages", [])]


@pytest.fixture
def queued(aws: LocalResources, monkeypatch: pytest.MonkeyPatch) -> QueuedNotifier:
    resolver = Resolver(load_template(), stack_name="connection-repair-local")
    provisioned = provision(resolver)
    sqs = boto3.client("sqs")
    queue_url = resolver.refs["NotifierQueue"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "0"})
    rig = build_notifier(aws.table_name, Clock(BROKEN_AT + timedelta(minutes=6)))
    monkeypatch.setattr(app, "notifier", lambda: rig.notifier)
    rig.preferences()
    batches: list[dict[str, Any]] = []

    def invoke(event: dict[str, Any]) -> Any:
        batches.append(event)
        return app.lambda_handler(event, LambdaContext())

    [notifier] = [spec for spec in provisioned.functions if spec.name == "NotifierFunction"]
    [source] = notifier.queues
    return QueuedNotifier(
        rig=rig,
        source=QueueEventSource(sqs, queue_url, source, invoke),
        mapping=source,
        bus=aws.event_bus_name,
        queue_url=queue_url,
        dead_letter_url=resolver.refs["NotifierDeadLetterQueue"],
        batches=batches,
    )


def needs_attention(rig: NotifierRig, connection_id: str) -> dict[str, Any]:
    detail: dict[str, Any] = json.loads(event_detail(attention(rig.connection(connection_id), at=BROKEN_AT)))
    return detail


def test_a_bus_event_reaches_the_notifier_through_its_queue_and_is_done(queued: QueuedNotifier) -> None:
    queued.publish(needs_attention(queued.rig, "conn-1"))

    queued.source.poll(wait_seconds=0)

    [batch] = queued.batches
    [record] = batch["Records"]
    assert json.loads(record["body"])["detail-type"] == ConnectionNeedsAttention.DETAIL_TYPE
    assert len(sent_emails()) == 1
    assert queued.waiting() == 0
    assert queued.parked() == []


def test_a_poison_event_is_tried_max_receive_times_then_parked_as_sent_while_its_batch_mates_are_done(
    queued: QueuedNotifier,
) -> None:
    poison = needs_attention(queued.rig, "conn-1")
    del poison["episodeId"]
    queued.publish(poison, needs_attention(queued.rig, "conn-2"))

    for _ in range(MAX_RECEIVES + 1):
        queued.source.poll(wait_seconds=0)

    # The good event in the first batch only; the poison in every batch until SQS parks it
    assert [len(batch["Records"]) for batch in queued.batches] == [2] + [1] * (MAX_RECEIVES - 1)
    assert len(sent_emails()) == 1
    assert queued.waiting() == 0
    [parked] = queued.parked()
    assert parked["detail-type"] == ConnectionNeedsAttention.DETAIL_TYPE
    assert parked["detail"] == poison


def test_a_batch_whose_invocation_fails_comes_back_whole(queued: QueuedNotifier) -> None:
    queued.publish(needs_attention(queued.rig, "conn-1"), needs_attention(queued.rig, "conn-2"))

    def timed_out(event: dict[str, Any]) -> Any:
        raise InvocationError("Task timed out after 300.00 seconds")

    QueueEventSource(boto3.client("sqs"), queued.queue_url, queued.mapping, timed_out).poll(wait_seconds=0)
    assert queued.waiting() == 2
    queued.source.poll(wait_seconds=0)
    [batch] = queued.batches
    assert len(batch["Records"]) == 2
    assert len(sent_emails()) == 1  # one customer: both connections in one message
    assert queued.waiting() == 0


@pytest.mark.parametrize(
    ("reports_failures", "answer", "left"),
    [
        (True, {"batchItemFailures": [{"itemIdentifier": "not-of-this-batch"}]}, 2),
        (True, {"batchItemFailures": [{"itemIdentifier": ""}]}, 2),
        (True, {"batchItemFailures": []}, 0),
        (False, {"batchItemFailures": [{"itemIdentifier": "not-of-this-batch"}]}, 0),
    ],
    ids=["unknown-id", "empty-id", "none-failed", "answer-ignored-without-ReportBatchItemFailures"],
)
def test_the_local_event_source_reads_the_answer_as_lambda_does(
    queued: QueuedNotifier, reports_failures: bool, answer: dict[str, Any], left: int
) -> None:
    queued.publish(needs_attention(queued.rig, "conn-1"), needs_attention(queued.rig, "conn-2"))
    mapping = replace(queued.mapping, reports_failures=reports_failures)

    QueueEventSource(boto3.client("sqs"), queued.queue_url, mapping, lambda event: answer).poll(wait_seconds=0)

    assert queued.waiting() == left
