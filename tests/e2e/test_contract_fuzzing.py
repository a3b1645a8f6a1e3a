"""schemathesis, the field's OpenAPI fuzzer, against the running local stack: every operation of docs/openapi.json,
with all of its checks but one (below), must find nothing.

The one left out, ``unsupported_method``, expects 405 for a method a path does not declare. API Gateway HTTP APIs
answer 404 `{"message":"Not Found"}` for any route they do not have, before any function runs, and the local gateway
answers as they do (docs/decisions.md §33).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from local.make_openapi import OPENAPI
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e

CUSTOMER = "customer-fuzzed"
EXAMPLES = 50


def test_schemathesis_finds_nothing_wrong_with_the_running_api(stack: RunningStack, tmp_path: Path) -> None:
    # Something of the caller's to list, besides the connections the fuzzer asks about at random
    with stack.simulator() as sim:
        sim.create_connection(CUSTOMER, status="RECONNECT_REQUIRED", status_reason="LOGIN_REQUIRED")
        sim.wait_until_idle(timeout=20)
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        str(OPENAPI),
        "--url",
        stack.config.api_url,
        "--checks",
        "all",
        "--exclude-checks",
        "unsupported_method",
        "--header",
        f"Authorization: Bearer {stack.token(CUSTOMER)}",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        "20261202",
        "--generation-database",
        "none",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)
    summary = result.stdout[-6000:]
    assert result.returncode == 0, f"{summary}\n{result.stderr[-2000:]}\n{stack.log_tail()}"
    assert " passed" in summary
