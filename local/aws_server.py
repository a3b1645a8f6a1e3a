"""``python -m local.aws_server PORT``: moto's server on 127.0.0.1, until SIGTERM/SIGINT or its stdin closes.

Not ``moto_server``: this binds loopback only, fails fast when the port is taken (ThreadedMotoServer would wait
forever), keeps werkzeug's per-request log quiet, and exits with the stack that started it (stdin is a pipe from it).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from local.config import HOST
from local.moto_atomic import serialise_dynamodb


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    def watch_parent() -> None:
        sys.stdin.read()  # returns at EOF: the stack closed the pipe or died
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # Concurrent requests, but DynamoDB's one at a time: its conditions must be atomic, as in AWS.
    app = serialise_dynamodb(DomainDispatcherApplication(create_backend_app))
    server = make_server(HOST, int(sys.argv[1]), app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    threading.Thread(target=watch_parent, daemon=True).start()
    while not stop.wait(1.0):
        pass
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
