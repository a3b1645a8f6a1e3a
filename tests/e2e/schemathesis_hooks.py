"""schemathesis hooks for tests/e2e/test_contract_fuzzing.py (loaded through SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import schemathesis

VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    """As a real client does, a distinct request gets a key of its own: a generated valid Idempotency-Key is tagged
    with a hash of the body, so the fuzzer's many bodies never share one (that is a 422 by design). Invalid keys stay
    as generated: they must be refused."""
    headers = case.headers or {}
    for name, value in list(headers.items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) and VALID_KEY.match(value):
            body = json.dumps(case.body, sort_keys=True, default=repr).encode()
            headers[name] = f"{value[:242]}-{hashlib.sha256(body).hexdigest()[:12]}"
