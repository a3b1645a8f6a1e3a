"""An HTTP server of the local stack, served on 127.0.0.1 from a background thread until ``stop()``."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Self


class ServedInBackground:
    _server: ThreadingHTTPServer
    _thread: threading.Thread
    port: int

    def _serve(self, server: ThreadingHTTPServer, name: str) -> None:
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=name, daemon=True
        )

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
