"""What a cold start of the webhook function loads, checked in a fresh interpreter laid out like Lambda."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import app
from connection_repair.wiring import webhook_ingestor
webhook_ingestor()
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in {"httpx", "aws_xray_sdk", "httpcore"})))
"""


def test_webhook_cold_start_loads_neither_httpx_nor_the_xray_sdk():
    env = {
        "PATH": os.environ["PATH"],
        # Lambda's layout: the function's code, then the layer's python/ folder.
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / "webhook_ingest"), str(ROOT / "layers" / "common")]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "cold",
        "AWS_SECRET_ACCESS_KEY": "cold",
        "TABLE_NAME": "table",
        "EVENT_BUS_NAME": "bus",
        "MELD_WEBHOOK_SECRET_NAME": "arn:aws:secretsmanager:us-east-1:123456789012:secret:webhook",
        "MELD_API_KEY_SECRET_NAME": "arn:aws:secretsmanager:us-east-1:123456789012:secret:meld",
        "TRACING_MODE": "active",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
