"""The import budget of each function: what its cold start may load, stated once, checked in a fresh interpreter
laid out like Lambda (the handler, then the first invocation's wiring)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import app
from connection_repair.wiring.{module} import {factory}
{factory}()
print(json.dumps(sorted(sys.modules)))
"""


class Budget(NamedTuple):
    function: str  # the folder under functions/
    factory: str  # <wiring module>.<factory>: what the first invocation builds
    environment: dict[str, str]
    # The layer's packages it may load (a module is in budget when its name starts with one of these).
    layer: tuple[str, ...]
    # What it must not load: large, and needed only on a rare path (they load there, on demand).
    never: tuple[str, ...]


SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
BUDGETS = [
    Budget(
        "webhook_ingest",
        "webhook.webhook_ingestor",
        {
            "TABLE_NAME": "table",
            "EVENT_BUS_NAME": "bus",
            "MELD_WEBHOOK_SECRET_NAME": SECRET_ARN + "webhook",
            "MELD_API_KEY_SECRET_NAME": SECRET_ARN + "meld",
        },
        layer=(
            "domain",
            "ingestion",
            "outbox",
            "platform",
            "adapters.dynamodb",
            "adapters.eventbridge",
            "adapters.secrets",
            "wiring.webhook",
        ),
        # httpx: only for a connection never seen (Meld's directory); the event handler: the webhook parses itself.
        never=("httpx", "httpcore", "aws_xray_sdk", "aws_lambda_powertools.event_handler", "email_validator"),
    ),
    Budget(
        "repair_api",
        "repair_api.repair_service",
        {"TABLE_NAME": "table", "MELD_API_KEY_SECRET_NAME": SECRET_ARN + "meld"},
        # erasure: DELETE /me's use case and port (two short modules; its adapter is built on the first DELETE).
        layer=(
            "domain",
            "repair",
            "preferences",
            "erasure",
            "platform",
            "adapters.dynamodb",
            "wiring.repair_api",
        ),
        # httpx: only when a request calls Meld (most read the table only).
        never=("httpx", "httpcore", "aws_xray_sdk"),
    ),
    Budget(
        "connection_replacer",
        "replacer.connection_replacer",
        {"TABLE_NAME": "table", "EVENT_BUS_NAME": "bus", "MELD_API_KEY_SECRET_NAME": SECRET_ARN + "meld"},
        layer=(
            "domain",
            "replacement",
            "repair.ports",
            "ingestion.ports",
            "outbox",
            "platform",
            "adapters",
            "wiring.replacer",
            "wiring.meld",
        ),
        never=("aws_xray_sdk", "aws_lambda_powertools.event_handler"),
    ),
    Budget(
        "notifier",
        "notifier.notifier",
        {
            "TABLE_NAME": "table",
            "APP_RECONNECT_URL": "https://app.example.com/connections/{connectionId}/reconnect",
            "APP_NOTIFICATION_SETTINGS_URL": "https://app.example.com/settings/notifications",
            "NOTIFY_SENDER_EMAIL": "notifications@example.com",
            "EVENT_BUS_NAME": "bus",
        },
        layer=(
            "domain.base",
            "domain.connection",
            "domain.errors",
            "domain.bus_events",
            "domain.incident",
            "domain.status_policy",
            "notify",
            "messages",
            "preferences",
            "platform",
            "adapters.templates",
            "adapters.dynamodb.connections",
            "adapters.dynamodb.keys",
            "adapters.dynamodb.errors",
            "adapters.dynamodb.notifications",
            "adapters.dynamodb.notification_items",
            "adapters.dynamodb.due_list",
            "adapters.dynamodb.paging",
            "adapters.dynamodb.preferences",
            "adapters.sending",
            "adapters.ses",
            "adapters.ses_tags",
            "adapters.sns",
            "adapters.dynamodb.incidents",
            "adapters.dynamodb.send_rate",
            "adapters.eventbridge",
            "outbox.ports",
            "wiring.notifier",
            "wiring.unsubscribe",
            "adapters.secrets",
        ),
        # Nothing of ingestion: the notifier reads connections, it never moves them. Nor Powertools' batch utility
        # (asyncio and every event source's data classes; its partial batch response is the handler's own loop).
        # Nor Jinja2 (~65 ms): loaded with the first message, and most invocations send none.
        never=(
            "httpx",
            "jinja2",
            "aws_xray_sdk",
            "connection_repair.ingestion",
            "connection_repair.domain.transitions",
            "aws_lambda_powertools.utilities.batch",
        ),
    ),
    Budget(
        "reconciler",
        "reconciler.reconciler",
        {"TABLE_NAME": "table", "EVENT_BUS_NAME": "bus", "MELD_API_KEY_SECRET_NAME": SECRET_ARN + "meld"},
        layer=(
            "domain",
            "reconcile",
            "ingestion.ingest",
            "ingestion.ports",
            "repair.ports",
            "outbox",
            "platform",
            "adapters",
            "wiring.reconciler",
            "wiring.meld",
        ),
        # Nothing of the webhook's verification, nor of the notifier: it moves connections as ingestion does.
        never=(
            "aws_xray_sdk",
            "aws_lambda_powertools.event_handler",
            "connection_repair.ingestion.signature",
            "connection_repair.notify",
        ),
    ),
    Budget(
        "outbox_sweeper",
        "outbox_sweeper.outbox_sweep",
        {"TABLE_NAME": "table", "EVENT_BUS_NAME": "bus"},
        layer=(
            "domain",
            "outbox",
            "ingestion.ports",
            "platform",
            "adapters.dynamodb",
            "adapters.eventbridge",
            "wiring.outbox_sweeper",
        ),
        # It publishes what is stored: no Meld, no transitions' callers.
        never=("httpx", "aws_xray_sdk", "connection_repair.ingestion.ingest", "connection_repair.notify"),
    ),
    Budget(
        "contact_feedback",
        "contact_feedback.feedback_store",
        {"TABLE_NAME": "table"},
        layer=(
            "domain",
            "notify",
            "preferences",
            "platform",
            "adapters.dynamodb",
            "adapters.ses_feedback",
            "adapters.ses_tags",
            "wiring.contact_feedback",
        ),
        # It writes one mark per bounce: nothing of sending, composing or Meld.
        never=("httpx", "aws_xray_sdk", "jinja2", "babel", "connection_repair.messages", "connection_repair.ingestion"),
    ),
    Budget(
        "unsubscribe",
        "unsubscribe.preferences_store",
        {"TABLE_NAME": "table", "UNSUBSCRIBE_SECRET_NAME": SECRET_ARN + "unsubscribe"},
        layer=("domain", "preferences", "platform", "adapters.dynamodb", "adapters.secrets", "wiring.unsubscribe"),
        # A page and one write: no Meld, no connections, no messages.
        never=("httpx", "aws_xray_sdk", "jinja2", "connection_repair.repair", "connection_repair.notify"),
    ),
]


def test_every_function_has_a_budget():
    assert {budget.function for budget in BUDGETS} == {
        path.name for path in (ROOT / "functions").iterdir() if (path / "app.py").exists()
    }


def cold_start(budget: Budget) -> list[str]:
    env = {
        "PATH": os.environ["PATH"],
        # Lambda's layout: the function's code, then the layer's python/ folder.
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / budget.function), str(ROOT / "layers" / "common")]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "cold",
        "AWS_SECRET_ACCESS_KEY": "cold",
        "TRACING_MODE": "active",
        **budget.environment,
    }
    module, _, factory = budget.factory.rpartition(".")
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module, factory=factory)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


@pytest.mark.parametrize("budget", BUDGETS, ids=[budget.function for budget in BUDGETS])
def test_a_cold_start_loads_only_what_its_function_needs(budget: Budget):
    loaded = cold_start(budget)
    layer = [name.removeprefix("connection_repair.") for name in loaded if name.startswith("connection_repair.")]
    # Packages load with their modules; the budget is about modules.
    over = [
        name
        for name in layer
        if not within(name, budget.layer)
        and not (ROOT / "layers" / "common" / "connection_repair" / name.replace(".", "/") / "__init__.py").exists()
    ]
    assert not over, f"{budget.function} loads layer modules outside its budget: {over}"
    forbidden = [name for name in loaded if within(name, budget.never)]
    assert not forbidden, f"{budget.function} loads {forbidden} at cold start"
    # The probe saw the function's own use case: a budget checked against an empty load would pass anything.
    assert any(name.startswith("connection_repair.wiring.") for name in loaded)
    assert "app" in loaded
