"""DynamoDB requests made atomic in moto, as they are in DynamoDB.

moto evaluates a condition and then writes, with no lock between: two concurrent requests can both pass
``attribute_not_exists(pk)`` and both write. DynamoDB applies each request (a transaction included) atomically, and
the exactly-once and ordering guarantees rest on that, so the emulation serialises DynamoDB requests: in the moto
server of the local stack (a WSGI wrapper) and in-process for the tests (around moto's request dispatch). Other
services stay concurrent (SQS long polls must not queue behind each other).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

_DYNAMODB = threading.Lock()
_TARGET_PREFIX = "DynamoDB_"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def serialise_dynamodb(app: WsgiApp) -> WsgiApp:
    """The moto server's WSGI app, with DynamoDB requests (``X-Amz-Target: DynamoDB_...``) one at a time."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(_TARGET_PREFIX):
            return app(environ, start_response)
        with _DYNAMODB:
            # Drain inside the lock: the write happens while the response is produced.
            return list(app(environ, start_response))

    return wrapped


@contextmanager
def atomic_dynamodb_in_process() -> Iterator[None]:
    """While active, moto's in-process DynamoDB handles one request at a time (use inside ``mock_aws``)."""
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        target = request.headers.get("X-Amz-Target", b"")
        if isinstance(target, bytes):
            target = target.decode()
        if not target.startswith(_TARGET_PREFIX):
            return original(self, request)
        with _DYNAMODB:
            return original(self, request)

    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
    try:
        yield
    finally:
        BotocoreStubber.process_request = original  # type: ignore[method-assign]
