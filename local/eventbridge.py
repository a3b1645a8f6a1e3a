"""Delivers EventBridge and SQS to the functions, as Lambda would (moto cannot run Lambda targets); and the schedules.

A rule whose target is a function routes, in moto, to one SQS queue per function standing in for Lambda's
asynchronous invocation; each message body is the real EventBridge envelope. ``FunctionTarget`` invokes the function
with it and deletes it on success; a failed event becomes visible again after the queue's visibility timeout and is
dropped after 1 + the function's MaximumRetryAttempts tries (Lambda's asynchronous retries; default 2).
A rule whose target is one of the template's queues delivers there; ``QueueEventSource`` is the function's SQS event
source mapping: batches of records, the ones the function reports failed (or all, if it raised) left to come back,
and moto moves a message past the queue's maxReceiveCount to its dead-letter queue, as SQS does.
Schedules are fired every ``LOCAL_SWEEP_SECONDS`` by putting a scheduled-event envelope on the function's queue.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from local.aws_resources import queue_arn
from local.functions import FunctionPool, InvocationError
from local.template import ACCOUNT_ID, REGION, QueueSource, RuleEvent

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)


def scheduled_event(rule_name: str, now: datetime | None = None) -> dict[str, Any]:
    """The event a schedule rule sends its target."""
    moment = now or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }


def completed(event: Any) -> Any:
    """The EventBridge envelope as EventBridge sends it: moto 5.2.5 leaves "account" out of what it puts on SQS."""
    if isinstance(event, dict) and "detail-type" in event and "account" not in event:
        return event | {"account": ACCOUNT_ID}
    return event


def sqs_record(
    *, message_id: str, receipt_handle: str, body: str, attributes: Mapping[str, str], queue_arn: str
) -> dict[str, Any]:
    """One record of the batch Lambda's SQS event source hands a function."""
    return {
        "messageId": message_id,
        "receiptHandle": receipt_handle,
        "body": body,
        "attributes": dict(attributes),
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


class Feed(Protocol):
    name: str

    def poll(self, wait_seconds: int) -> None:
        """Receive once (waiting up to ``wait_seconds``) and deliver what came."""


class FunctionTarget:
    """A function as a rule's target: each event one asynchronous invocation."""

    def __init__(self, sqs: SQSClient, queue_url: str, pool: FunctionPool) -> None:
        self.name = pool.spec.name
        self._sqs, self._url, self._pool = sqs, queue_url, pool

    def poll(self, wait_seconds: int) -> None:
        response = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        for message in response.get("Messages", []):
            self._deliver(message)

    def _deliver(self, message: Any) -> None:
        event = completed(json.loads(message["Body"]))
        attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        label = event.get("detail-type", "event") if isinstance(event, dict) else "event"
        try:
            invocation = self._pool.invoke(event)
        except InvocationError as error:
            if attempt < self._pool.spec.async_attempts:
                logger.warning("%s failed on %r (attempt %d, will retry): %s", self.name, label, attempt, error)
                return
            logger.error("%s failed on %r %d times; dropped: %s", self.name, label, attempt, error)
        else:
            logger.info("%s ← %r (%.0f ms)", self.name, label, invocation.duration_ms)
        self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])


class QueueEventSource:
    """A function's SQS event source mapping: up to BatchSize records per invocation."""

    def __init__(
        self, sqs: SQSClient, queue_url: str, source: QueueSource, invoke: Callable[[dict[str, Any]], Any]
    ) -> None:
        self.name = source.function
        self._sqs, self._url, self._source, self._invoke = sqs, queue_url, source, invoke
        self._arn = queue_arn(sqs, queue_url)

    def poll(self, wait_seconds: int) -> None:
        messages = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=min(self._source.batch_size, 10),
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return
        try:
            result = self._invoke({"Records": [self._record(message) for message in messages]})
        except InvocationError as error:
            # Lambda leaves the whole batch to come back after the visibility timeout.
            logger.warning(
                "%s failed on a batch of %d from %s: %s", self.name, len(messages), self._source.queue, error
            )
            return
        failed = self._failed(result, {message["MessageId"] for message in messages})
        done = [message for message in messages if message["MessageId"] not in failed]
        if done:
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)]
            self._sqs.delete_message_batch(QueueUrl=self._url, Entries=entries)  # type: ignore[arg-type]
        logger.info("%s ← %d records from %s (%d returned)", self.name, len(messages), self._source.queue, len(failed))

    def _failed(self, result: Any, batch: set[str]) -> set[str]:
        """The records to leave in the queue after a successful invocation, as Lambda reads its answer."""
        if not self._source.reports_failures or not isinstance(result, dict):
            return set()  # without ReportBatchItemFailures, a successful invocation is the whole batch done
        named = {item.get("itemIdentifier") for item in result.get("batchItemFailures") or []}
        # An identifier that is empty or not of this batch makes Lambda treat the whole batch as failed.
        return named if named <= batch else batch

    def _record(self, message: Any) -> dict[str, Any]:
        body = message["Body"]
        with contextlib.suppress(ValueError):
            event = json.loads(body)
            envelope = completed(event)
            if envelope is not event:
                body = json.dumps(envelope)
        return sqs_record(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            body=body,
            attributes=message.get("Attributes", {}),
            queue_arn=self._arn,
        )


class Poller:
    """One thread per feed; ``stop()`` returns within about a second (the long-poll wait)."""

    def __init__(self, feeds: Sequence[Feed]) -> None:
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll, args=(feed,), name=f"poll-{feed.name}", daemon=True) for feed in feeds
        ]

    def start(self) -> Poller:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    def _poll(self, feed: Feed) -> None:
        while not self._stop.is_set():
            try:
                feed.poll(wait_seconds=1)
            except Exception:
                # moto is going away (shutdown) or briefly busy: wait and try again.
                if not self._stop.wait(1.0):
                    logger.warning("polling for %s failed; retrying", feed.name, exc_info=True)


class Scheduler:
    """Fires every enabled schedule rule every ``interval`` seconds (the first after one interval)."""

    def __init__(self, sqs: SQSClient, rules: list[RuleEvent], queues: Mapping[str, str], interval: float) -> None:
        self._sqs = sqs
        self._rules = [rule for rule in rules if rule.enabled]
        self._queues = queues
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> Scheduler:
        if self._rules:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def fire(self) -> None:
        for rule in self._rules:
            # A rule with a constant Input sends that instead of the scheduled-event envelope.
            body = rule.input if rule.input is not None else json.dumps(scheduled_event(rule.name))
            self._sqs.send_message(QueueUrl=self._queues[rule.function], MessageBody=body)
            logger.info("schedule %s fired for %s", rule.schedule, rule.function)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.fire()
            except Exception:
                logger.warning("firing schedules failed", exc_info=True)
