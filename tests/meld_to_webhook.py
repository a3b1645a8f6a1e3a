"""Meld's simulator delivering to the real webhook handler over HTTP, behind a miniature API Gateway."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from functions.webhook_ingest import app as webhook_app
from local.apigw import http_api_event
from local.meld_simulator.client import SimulatorClient
from tests.support import LambdaContext


class WebhookReceiver:
    """API Gateway in miniature: each POST becomes a payload 2.0 event for the real webhook handler."""

    def __init__(self, *, concurrent: bool = False) -> None:
        self.answers: list[int] = []
        # One delivery at a time, as one warm Lambda execution environment would handle them; or, concurrent, as
        # several environments would.
        self._lock: threading.Lock | contextlib.nullcontext[None] = (
            contextlib.nullcontext() if concurrent else threading.Lock()
        )
        self._answers_lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event = http_api_event(
                    "POST",
                    "/webhooks/meld",
                    route_key="POST /webhooks/meld",
                    headers=dict(self.headers.items()),
                    body=body,
                )
                with receiver._lock:
                    response = webhook_app.lambda_handler(event, LambdaContext())
                with receiver._answers_lock:
                    receiver.answers.append(response["statusCode"])
                payload = response["body"].encode()
                self.send_response(response["statusCode"])
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/meld"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class MeldToWebhook:
    sim: SimulatorClient
    receiver: WebhookReceiver
