"""schemathesis, the field's OpenAPI fuzzer, against the running local stack: every operation of docs/openapi.json,
with all of its checks but one (below), must find nothing.

The one left out, ``unsupported_method``, expects 405 for a method a path does not declare. API Gateway HTTP APIs
answer 404 `{"message":"Not Found"}` for any route they do not have, before any function runs, and the local gateway
answers as they do (docs/decisions.md §33).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.make_openapi import OPENAPI
from local.template import ROOT
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e

CUSTOMER = "customer-fuzzed"
EXAMPLES = 50


def test_schemathesis_finds_nothing_wrong_with_the_running_api(stack: RunningStack, tmp_path: Path) -> None:
    # Something of the caller's to list, besides the connections the fuzzer asks about at random
    with stack.simulator() as sim:
        sim.create_connection(CUSTOMER, status="RECONNECT_REQUIRED", status_reason="LOGIN_REQUIRED")
        sim.wait_until_idle(timeout=20)
    # The token as the OpenAPI security scheme's credentials: schemathesis then also sends requests without it.
    config = tmp_path / "schemathesis.toml"
    config.write_text('[auth.openapi.jwt]\nbearer = "${FUZZ_TOKEN}"\n')
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        str(OPENAPI),
        "--url",
        stack.config.api_url,
        "--checks",
        "all",
        "--exclude-checks",
        "unsupported_method",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        "20261202",
        "--generation-database",
        "none",
    ]
    # A generated Idempotency-Key reused with another body is a 422 by design: the hook gives each body its own.
    environment = os.environ | {
        "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
        "PYTHONPATH": str(ROOT),
        "FUZZ_TOKEN": stack.token(CUSTOMER),
    }
    result = subprocess.run(
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=900, check=False
    )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, f"{summary}\n{result.stderr[-2000:]}\n{stack.log_tail()}"
    assert " passed" in summary
