"""What a cold start of a function loads, checked in a fresh interpreter laid out like Lambda."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Imports the handler, runs its wiring factory (what the first invocation builds) and prints the watched modules.
PROBE = """
import json, sys
import app
from connection_repair.wiring.{module} import {factory}
{factory}()
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in {roots!r} or name in {modules!r})))
"""


def cold_start_loads(function: str, factory: str, environment: dict[str, str], watched: set[str]) -> list[str]:
    env = {
        "PATH": os.environ["PATH"],
        # Lambda's layout: the function's code, then the layer's python/ folder.
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / function), str(ROOT / "layers" / "common")]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "cold",
        "AWS_SECRET_ACCESS_KEY": "cold",
        "TRACING_MODE": "active",
        **environment,
    }
    module, _, name = factory.rpartition(".")
    probe = PROBE.format(
        module=module,
        factory=name,
        roots={name for name in watched if "." not in name},
        modules={name for name in watched if "." in name},
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_webhook_cold_start_loads_neither_httpx_nor_the_xray_sdk():
    environment = {
        "TABLE_NAME": "table",
        "EVENT_BUS_NAME": "bus",
        "MELD_WEBHOOK_SECRET_NAME": "arn:aws:secretsmanager:us-east-1:123456789012:secret:webhook",
        "MELD_API_KEY_SECRET_NAME": "arn:aws:secretsmanager:us-east-1:123456789012:secret:meld",
    }
    watched = {"httpx", "httpcore", "aws_xray_sdk"}
    assert cold_start_loads("webhook_ingest", "webhook.webhook_ingestor", environment, watched) == []


def test_notifier_cold_start_loads_neither_httpx_nor_the_webhook_transition_logic():
    environment = {
        "TABLE_NAME": "table",
        "APP_RECONNECT_URL": "https://app.example.com/connections/{connectionId}/reconnect",
        "NOTIFY_SENDER_EMAIL": "notifications@example.com",
    }
    watched = {"httpx", "aws_xray_sdk", "connection_repair.domain.transitions", "connection_repair.ingestion.service"}
    assert cold_start_loads("notifier", "notifier.notifier", environment, watched) == []
