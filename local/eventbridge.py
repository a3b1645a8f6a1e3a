"""Delivers EventBridge to the functions: rule queue → function (moto cannot run Lambda targets), and the schedules.

The template's rules route, in moto, to one SQS queue per function; each message body is the real EventBridge
envelope. A poller invokes the function with it and deletes it on success. A failed event becomes visible again
after the queue's visibility timeout and is dropped after 1 + the function's MaximumRetryAttempts tries (Lambda's
asynchronous retries; default 2).
Schedules are fired every ``LOCAL_SWEEP_SECONDS`` by putting a scheduled-event envelope on the same queue.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from local.functions import FunctionPool, InvocationError
from local.template import ACCOUNT_ID, REGION, RuleEvent

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


class RuleQueuePoller:
    """One thread per function queue; ``stop()`` returns within about a second (the long-poll wait)."""

    def __init__(self, sqs: SQSClient, queues: Mapping[str, str], pools: Mapping[str, FunctionPool]) -> None:
        self._sqs = sqs
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll, args=(url, pools[name]), name=f"poll-{name}", daemon=True)
            for name, url in queues.items()
        ]

    def start(self) -> RuleQueuePoller:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    def _poll(self, queue_url: str, pool: FunctionPool) -> None:
        while not self._stop.is_set():
            try:
                response = self._sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=1,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                )
            except Exception:
                # moto is going away (shutdown) or briefly busy: wait and try again.
                if not self._stop.wait(1.0):
                    logger.warning("receiving from %s failed; retrying", queue_url, exc_info=True)
                continue
            for message in response.get("Messages", []):
                if self._stop.is_set():
                    return
                self._deliver(queue_url, pool, message)

    def _deliver(self, queue_url: str, pool: FunctionPool, message: Any) -> None:
        event = json.loads(message["Body"])
        if isinstance(event, dict) and "detail-type" in event:
            # moto 5.2.5 leaves "account" out of the envelope it sends to SQS; EventBridge always sends it.
            event.setdefault("account", ACCOUNT_ID)
        attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        label = event.get("detail-type", "event") if isinstance(event, dict) else "event"
        try:
            invocation = pool.invoke(event)
        except InvocationError as error:
            if attempt < pool.spec.async_attempts:
                logger.warning("%s failed on %r (attempt %d, will retry): %s", pool.spec.name, label, attempt, error)
                return
            logger.error("%s failed on %r %d times; dropped: %s", pool.spec.name, label, attempt, error)
        else:
            logger.info("%s ← %r (%.0f ms)", pool.spec.name, label, invocation.duration_ms)
        self._sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


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
