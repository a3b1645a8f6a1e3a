"""Meld's simulator delivering to the real webhook handler over HTTP, behind a miniature API Gateway."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from functions.webhook_ingest import app as webhook_app
from local.apigw import http_api_event
from local.make_events import LOCAL_WEBHOOK_SECRET
from local.meld_simulator import MeldSimulator, SimulatorConfig
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


@contextlib.contextmanager
def meld_delivering_to_the_webhook(
    monkeypatch: Any, api_key: str, *, concurrent: bool = False, **delivery: Any
) -> Iterator[tuple[MeldSimulator, SimulatorClient, WebhookReceiver]]:
    """The simulator signing and delivering to the real webhook handler (``webhook_env`` set up), with Meld's
    retries seconds apart instead of minutes; ``delivery``: SimulatorConfig's delivery options."""
    from connection_repair.wiring.webhook import webhook_ingestor

    receiver = WebhookReceiver(concurrent=concurrent)
    monkeypatch.setenv("MELD_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("MELD_WEBHOOK_TOLERANCE_SECONDS", "300")
    webhook_ingestor.cache_clear()
    config = SimulatorConfig(
        api_key=api_key,
        webhook_secret=LOCAL_WEBHOOK_SECRET,
        webhook_url=receiver.url,
        port=0,
        retry_delays=(0.2, 0.5, 1.0),
        **delivery,
    )
    try:
        with MeldSimulator(config) as simulator, SimulatorClient(simulator.base_url) as client:
            yield simulator, client, receiver
    finally:
        receiver.stop()
