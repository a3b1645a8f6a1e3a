from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

# Fake credentials and region before anything creates a boto3 client: tests never reach a real endpoint. Except a
# run against a deployed stack (`make e2e-deployed`): it keeps the caller's own, and runs only the suite written for
# one (pytest_collection_modifyitems below).
os.environ.update(
    {"POWERTOOLS_SERVICE_NAME": "connection-repair", "POWERTOOLS_METRICS_NAMESPACE": "ConnectionRepair"}
    | (
        {}
        if os.environ.get("AWS_SAM_STACK_NAME")
        else {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
)
os.environ.pop("AWS_ENDPOINT_URL", None)
# The developer's own profile is never read either (it is the point of a deployed stack's run).
os.environ.pop("" if os.environ.get("AWS_SAM_STACK_NAME") else "AWS_PROFILE", None)

import boto3
import botocore.loaders
import botocore.session
import pytest
from hypothesis import Phase, settings
from moto import mock_aws

from local.aws_resources import LocalResources, create_resources
from local.make_events import LOCAL_WEBHOOK_SECRET, LOCAL_WEBHOOK_URL
from local.moto_atomic import atomic_dynamodb_in_process
from tests.support import conforming

# One botocore loader for every session: moto gives each test fresh sessions, and each would parse the services'
# JSON models again (about 0.1 s a client). The models are read-only data.
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)  # type: ignore[assignment]

# Under mutation testing (mutation/run.py) a property test only has to fail: the same examples every run, no
# shrinking, no example database.
settings.register_profile(
    "mutation", derandomize=True, database=None, phases=[Phase.explicit, Phase.reuse, Phase.generate]
)

# The committed events are signed at a fixed time; handler tests reach back to it (tolerance edges are unit-tested).
FIXTURE_TOLERANCE_SECONDS = str(20 * 365 * 24 * 3600)


@pytest.fixture
def aws() -> Iterator[LocalResources]:
    """moto, with the template's table and bus; DynamoDB requests atomic, as in AWS (local/moto_atomic.py)."""
    with mock_aws(), atomic_dynamodb_in_process():
        yield create_resources()


@pytest.fixture
def downstream(aws: LocalResources) -> Callable[[], list[dict[str, Any]]]:
    """Everything put on the app's bus, caught by a rule into an SQS queue; call it to drain what arrived."""
    sqs = boto3.client("sqs")
    events = boto3.client("events")
    queue_url = sqs.create_queue(QueueName="downstream-capture")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # Meld's forwarded webhooks are caught by the `forwarded` fixture, not here.
    pattern = {"source": ["connection-repair"], "detail-type": [{"anything-but": "Meld Webhook Received"}]}
    events.put_rule(Name="capture-all", EventBusName=aws.event_bus_name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="capture-all", EventBusName=aws.event_bus_name, Targets=[{"Id": "q", "Arn": queue_arn}])

    def drain() -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return received
            for message in batch:
                # Every event a test reads off the bus is checked against its schema (docs/events/)
                received.append(conforming(json.loads(message["Body"])))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    return drain


@pytest.fixture
def webhook_env(aws: LocalResources, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalResources]:
    """The webhook function's environment, as template.yaml gives it, pointed at moto."""
    from connection_repair.wiring.webhook import webhook_ingestor

    monkeypatch.setenv("TABLE_NAME", aws.table_name)
    monkeypatch.setenv("EVENT_BUS_NAME", aws.event_bus_name)
    monkeypatch.setenv("MELD_WEBHOOK_URL", LOCAL_WEBHOOK_URL)
    monkeypatch.setenv("MELD_WEBHOOK_SECRET", LOCAL_WEBHOOK_SECRET)
    monkeypatch.setenv("MELD_WEBHOOK_TOLERANCE_SECONDS", FIXTURE_TOLERANCE_SECONDS)
    monkeypatch.setenv("MELD_API_BASE_URL", "https://meld.invalid")
    monkeypatch.setenv("MELD_API_KEY", "test-meld-api-key")
    webhook_ingestor.cache_clear()
    yield aws
    webhook_ingestor.cache_clear()


@pytest.fixture
def captured_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """Everything the service logs (Powertools' JSON lines) and prints (metrics), as one text."""
    import io
    import logging

    from connection_repair.platform.observability import logger

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)

    def text() -> str:
        captured = capsys.readouterr()
        return buffer.getvalue() + captured.out + captured.err

    yield text
    logger.removeHandler(handler)


@pytest.fixture
def notifier_env(aws: LocalResources, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalResources]:
    """The notifier function's environment, as template.yaml gives it, pointed at moto; its wiring built afresh."""
    from connection_repair.wiring.notifier import notifier

    monkeypatch.setenv("TABLE_NAME", aws.table_name)
    monkeypatch.setenv("APP_RECONNECT_URL", "https://app.example.com/c/{connectionId}")
    monkeypatch.setenv("APP_NOTIFICATION_SETTINGS_URL", "https://app.example.com/settings/notifications")
    monkeypatch.setenv("NOTIFY_SENDER_EMAIL", "notifications@app.example.com")
    monkeypatch.setenv("NOTIFY_REMINDER_HOURS", "24,72")
    monkeypatch.setenv("NOTIFY_DIGEST_WINDOW_MINUTES", "5")
    monkeypatch.setenv("NOTIFY_MIN_INTERVAL_HOURS", "24")
    monkeypatch.setenv("EVENT_BUS_NAME", aws.event_bus_name)
    notifier.cache_clear()
    yield aws
    notifier.cache_clear()


DEPLOYED_SUITE = "tests/e2e/test_deployed_stack.py"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With a deployed stack named, nothing but the suite written for one runs: the rest expects moto and fakes."""
    if not os.environ.get("AWS_SAM_STACK_NAME"):
        return
    kept = [item for item in items if item.nodeid.startswith(DEPLOYED_SUITE)]
    deselected = [item for item in items if not item.nodeid.startswith(DEPLOYED_SUITE)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
