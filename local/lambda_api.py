"""Lambda's Invoke API for the local stack's functions, as `sam local start-lambda` serves it.

`aws lambda invoke --endpoint-url`, boto3's ``lambda`` client or `make backfill` reach a function by its logical id:
``POST /2015-03-31/functions/<LogicalId>/invocations`` with the event as the body. ``RequestResponse`` answers the
function's result (an error as ``X-Amz-Function-Error: Unhandled`` with ``errorMessage``/``errorType``), ``Event``
answers 202 and runs it in the background, ``DryRun`` answers 204.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.config import HOST
from local.functions import FunctionPool, InvocationError
from local.serving import ServedInBackground

logger = logging.getLogger(__name__)

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
INVOCATION_TYPES = frozenset({"RequestResponse", "Event", "DryRun"})
# Lambda's own limit on a synchronous request payload.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


class LambdaApi(ServedInBackground):
    """Serves ``pools`` on 127.0.0.1:``port`` from a background thread; ``stop()`` ends it."""

    def __init__(self, pools: Mapping[str, FunctionPool], port: int) -> None:
        self._pools = pools
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length <= MAX_PAYLOAD_BYTES else b""
                status, headers, answer = api.invoke(
                    self.path, self.headers.get("X-Amz-Invocation-Type") or "RequestResponse", body, length
                )
                payload = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer((HOST, port), Handler)
        server.daemon_threads = True
        self._serve(server, "lambda-api")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def invoke(self, path: str, kind: str, body: bytes, length: int) -> tuple[int, dict[str, str], Any]:
        """The answer to one Invoke request: status, headers, JSON body (None: empty)."""
        try:
            pool, event = self._request(path, body, length)
        except Refused as refused:
            return refused.status, {"x-amzn-ErrorType": refused.error_type}, {"Type": "User", "message": str(refused)}
        if kind not in INVOCATION_TYPES:
            return 400, {"x-amzn-ErrorType": "InvalidParameterValueException"}, {"message": f"Unknown type: {kind}"}
        if kind == "DryRun":
            return 204, {}, None
        if kind == "Event":
            threading.Thread(target=self._in_background, args=(pool, event), daemon=True).start()
            return 202, {}, None
        try:
            return 200, {"X-Amz-Executed-Version": "$LATEST"}, pool.invoke(event).result
        except InvocationError as error:
            error_type, _, message = str(error).partition(": ")
            answer = {"errorMessage": message or error_type, "errorType": error_type if message else "Unhandled"}
            return 200, {"X-Amz-Function-Error": "Unhandled", "X-Amz-Executed-Version": "$LATEST"}, answer

    def _request(self, path: str, body: bytes, length: int) -> tuple[FunctionPool, Any]:
        """The function and the event a request names; ``Refused`` as Lambda refuses it."""
        found = INVOKE_PATH.match(path.split("?", 1)[0])
        if found is None:
            raise Refused(404, "UnknownOperationException", f"No such operation: POST {path}")
        pool = self._pools.get(found["name"])
        if pool is None:
            known = ", ".join(sorted(self._pools))
            raise Refused(404, "ResourceNotFoundException", f"Function not found: {found['name']} (functions: {known})")
        if length > MAX_PAYLOAD_BYTES:
            raise Refused(413, "RequestTooLargeException", f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes")
        try:
            return pool, json.loads(body or b"{}")
        except ValueError:
            raise Refused(400, "InvalidRequestContentException", "Could not parse request body into json") from None

    @staticmethod
    def _in_background(pool: FunctionPool, event: Any) -> None:
        try:
            pool.invoke(event)
        except InvocationError:
            logger.exception("asynchronous invocation failed")


class Refused(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
