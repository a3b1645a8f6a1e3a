"""``MeldSimulator``: serves the simulator on 127.0.0.1 from a background thread."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local.meld_simulator.api import Request, Response, SimulatorApp
from local.meld_simulator.backend import MeldBackend
from local.meld_simulator.config import SimulatorConfig
from local.meld_simulator.faults import FaultPlan
from local.meld_simulator.webhooks import WebhookDispatcher

logger = logging.getLogger(__name__)

# Loopback only: the simulator accepts a well-known API key and must never be reachable from the network.
HOST = "127.0.0.1"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: SimulatorApp

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (e.g. during a "timeout" fault) is expected, not worth a traceback.
        logger.debug("connection from %s ended abruptly", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.1 keep-alive lets httpx reuse connections; every response sets Content-Length.
    protocol_version = "HTTP/1.1"
    server_version = "MeldSimulator/1.0"

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=url.path.rstrip("/") or "/",
            query=parse_qs(url.query),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        self._write(self.server.app.handle(request))

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


class MeldSimulator:
    """Start with ``start()`` (or ``with MeldSimulator(config) as sim:``); ``base_url`` is valid once started.

    Single use: after ``stop()`` create a new one.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.faults = FaultPlan()
        self.webhooks = WebhookDispatcher(self.config, self.faults)
        self.backend = MeldBackend(self.config, self.webhooks)
        self.app = SimulatorApp(self.config, self.backend, self.webhooks, self.faults)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return f"http://{HOST}:{self._server.server_address[1]}"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return int(self._server.server_address[1])

    def start(self) -> MeldSimulator:
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        if self.app.stopping.is_set():
            raise RuntimeError("a stopped simulator cannot be restarted; create a new one")
        server = _Server((HOST, self.config.port), _Handler)
        server.app = self.app
        self._server = server
        self.backend.base_url = self.base_url
        # A short poll interval makes stop() quick (shutdown waits for the serve loop's next poll).
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="meld-simulator", daemon=True
        )
        self._thread.start()
        logger.info("Meld simulator listening on %s, webhooks to %s", self.base_url, self.config.webhook_url)
        return self

    def stop(self) -> None:
        self.app.stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.webhooks.close()

    def __enter__(self) -> MeldSimulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
