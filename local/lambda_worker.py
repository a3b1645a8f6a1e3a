"""One Lambda execution environment: imports a function's handler once, then runs the events it is sent.

Started by ``local.functions`` as ``python local/lambda_worker.py <handler> <function name>`` with the function's
environment and ``PYTHONPATH`` = its code folder and the layer, as Lambda lays them out. Protocol: one JSON line per
message on stdin ({"event", "requestId", "timeoutMs"}) and one JSON line per answer on the original stdout;
everything the handler prints or logs goes to stderr, which the stack shows prefixed with the function's name.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any, TextIO


class LambdaContext:
    """What Lambda passes as ``context``: the attributes Powertools and handlers read."""

    def __init__(self, function_name: str, request_id: str, timeout_ms: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _send(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message, default=str) + "\n")
    channel.flush()


def main() -> None:
    handler_path, function_name = sys.argv[1], sys.argv[2]
    # Answers go to a private copy of stdout; fd 1 becomes stderr so a handler's print() cannot corrupt them.
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    module_name, _, attribute = handler_path.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except Exception as error:
        traceback.print_exc()
        _send(channel, {"type": "init_error", "errorType": type(error).__name__, "errorMessage": str(error)})
        sys.exit(1)
    _send(channel, {"type": "ready"})
    for line in sys.stdin:  # ends when the stack closes the pipe (or dies)
        message = json.loads(line)
        context = LambdaContext(function_name, message["requestId"], message["timeoutMs"])
        try:
            result = handler(message["event"], context)
        except Exception as error:
            # Lambda logs the traceback and returns an error payload; API Gateway then answers 500.
            traceback.print_exc()
            _send(channel, {"type": "error", "errorType": type(error).__name__, "errorMessage": str(error)})
            continue
        _send(channel, {"type": "result", "result": result})


if __name__ == "__main__":
    # Lambda's import path is the function's code and the layer only, not this script's folder.
    sys.path.pop(0)
    main()
