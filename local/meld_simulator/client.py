"""Thin helpers over the ``/_sim`` control endpoints, for tests and demos."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx


class SimulatorClient:
    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        # trust_env=False: a developer's proxy settings must not intercept calls to 127.0.0.1.
        self._http = httpx.Client(base_url=base_url, timeout=timeout, trust_env=False)

    @property
    def http(self) -> httpx.Client:
        """The underlying client (base URL set), for asserting on raw responses such as error statuses."""
        return self._http

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SimulatorClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def create_connection(
        self,
        external_customer_id: str,
        *,
        status: str = "ACTIVE",
        status_reason: str | None = None,
        institution_name: str | None = None,
        institution_id: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"externalCustomerId": external_customer_id, "status": status}
        if status_reason is not None:
            body["statusReason"] = status_reason
        if institution_name is not None:
            body["institutionName"] = institution_name
        if institution_id is not None:
            body["institutionId"] = institution_id
        return self._object("POST", "/_sim/connections", body)

    def set_status(self, connection_id: str, status: str, status_reason: str | None = None) -> dict[str, Any]:
        body = {"status": status, "statusReason": status_reason}
        return self._object("POST", f"/_sim/connections/{connection_id}/status", body)

    def complete_widget(self, connect_token: str, *, outcome: str = "SUCCESS") -> dict[str, Any]:
        return self._object("POST", "/_sim/widget/complete", {"connectToken": connect_token, "outcome": outcome})

    def add_fault(self, endpoint: str, mode: str, *, count: int = 1, retry_after: int | None = None) -> None:
        body: dict[str, Any] = {"endpoint": endpoint, "mode": mode, "count": count}
        if retry_after is not None:
            body["retryAfter"] = retry_after
        self._json("POST", "/_sim/faults", body)

    def clear_faults(self) -> None:
        self._json("DELETE", "/_sim/faults")

    def deliveries(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json("GET", "/_sim/deliveries")
        return result

    def events(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json("GET", "/_sim/events")
        return result

    def clear_deliveries(self) -> None:
        self._json("DELETE", "/_sim/deliveries")

    def reset(self) -> None:
        self._json("POST", "/_sim/reset")

    def health(self) -> dict[str, Any]:
        return self._object("GET", "/_sim/health")

    def wait_for_deliveries(
        self, predicate: Callable[[list[dict[str, Any]]], bool], *, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Poll ``/_sim/deliveries`` until ``predicate`` holds; ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            attempts = self.deliveries()
            if predicate(attempts):
                return attempts
            if time.monotonic() >= deadline:
                raise TimeoutError(f"deliveries did not reach the expected state: {attempts}")
            time.sleep(0.02)

    def wait_until_idle(self, *, timeout: float = 5.0) -> None:
        """Wait until no webhook is being delivered or waiting for a retry."""
        deadline = time.monotonic() + timeout
        while self.health()["pendingDeliveries"]:
            if time.monotonic() >= deadline:
                raise TimeoutError("webhook deliveries still pending")
            time.sleep(0.02)

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=body)
        response.raise_for_status()
        return response.json()

    def _object(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        result = self._json(method, path, body)
        if not isinstance(result, dict):
            raise TypeError(f"{method} {path} did not return a JSON object")
        return result
