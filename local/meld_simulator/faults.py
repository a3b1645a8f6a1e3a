"""Scripted failures: the next N calls of an endpoint fail in a chosen way, to rehearse the client's error paths.

The ``webhooks`` endpoint has one mode, ``drop``: the next N webhook events are lost (never attempted, never retried),
to rehearse what reconciliation must find.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal, cast

type Endpoint = Literal["repair", "start", "get", "list", "delete", "webhooks"]
type Mode = Literal["500", "429", "timeout", "409", "invalid_json", "html", "drop"]

WEBHOOKS = "webhooks"
DROP = "drop"
ENDPOINTS: frozenset[str] = frozenset({"repair", "start", "get", "list", "delete", WEBHOOKS})
MODES: frozenset[str] = frozenset({"500", "429", "timeout", "409", "invalid_json", "html", DROP})


@dataclass(slots=True)
class Fault:
    endpoint: Endpoint
    mode: Mode
    remaining: int
    retry_after: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "mode": self.mode, "count": self.remaining, "retryAfter": self.retry_after}


class FaultError(ValueError):
    pass


def parse_fault(body: dict[str, Any]) -> Fault:
    endpoint = body.get("endpoint")
    mode = body.get("mode")
    count = body.get("count", 1)
    retry_after = body.get("retryAfter")
    if endpoint not in ENDPOINTS:
        raise FaultError(f"endpoint must be one of {sorted(ENDPOINTS)}")
    # A number is a natural way to write "500" or "429"; accept it.
    mode = str(mode) if isinstance(mode, int) else mode
    if mode not in MODES:
        raise FaultError(f"mode must be one of {sorted(MODES)}")
    if (endpoint == WEBHOOKS) != (mode == DROP):
        raise FaultError(f"the {WEBHOOKS} endpoint takes the mode {DROP!r}, and only it does")
    if not _is_int(count) or count < 1:
        raise FaultError("count must be a positive integer")
    if retry_after is not None and (not _is_int(retry_after) or retry_after < 0):
        raise FaultError("retryAfter must be a non-negative integer (seconds)")
    return Fault(endpoint=cast(Endpoint, endpoint), mode=cast(Mode, mode), remaining=count, retry_after=retry_after)


def _is_int(value: object) -> bool:
    # bool is an int subclass; `true` is not a count.
    return isinstance(value, int) and not isinstance(value, bool)


class FaultPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, endpoint: str) -> Fault | None:
        """Consume one call of the first pending fault for ``endpoint`` (faults queue in the order added)."""
        with self._lock:
            for fault in self._faults:
                if fault.endpoint == endpoint:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return Fault(fault.endpoint, fault.mode, 1, fault.retry_after)
            return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_json() for fault in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
