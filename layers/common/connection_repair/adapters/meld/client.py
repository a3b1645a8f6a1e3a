"""Meld's bank-linking API over httpx: the one client every function uses to call Meld.

Retries 429, 5xx, timeouts and transport errors with full-jitter backoff, honours ``Retry-After``, and never waits
past a per-call deadline (the Repair API must answer inside API Gateway's 29 s). A POST keeps one idempotency key
across its retries, so retrying it is safe. Responses become pydantic models that drop unknown fields, which keeps
``serviceProviderDetails`` (it can hold provider access tokens) out of everything we hold. Nothing secret is logged:
no API key, connect token, widget URL or body.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from connection_repair.adapters.meld.errors import (
    MeldError,
    MeldUnavailable,
)
from connection_repair.adapters.meld.models import (
    ConnectionPage,
    MeldConnectionInfo,
    NewConnectionGrant,
    RepairGrant,
)
from connection_repair.adapters.meld.responses import error_from, parse

logger = logging.getLogger(__name__)

DEFAULT_MELD_VERSION = "2025-03-04"
DEFAULT_TIMEOUT = httpx.Timeout(connect=2.0, read=8.0, write=8.0, pool=2.0)
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_CAP_SECONDS = 4.0


# The least time an attempt is given; a retry that would have less is not made.
MIN_ATTEMPT_SECONDS = 0.05


# What says a request was not taken: the connection never opened, or Meld answered that it did not take it.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
NOT_TAKEN = frozenset({429, 503})


def _is_retryable(status_code: int) -> bool:
    return status_code == 429 or status_code >= 500


class MeldClient:
    """Meld's bank-linking API. Thread-safe as far as ``httpx.Client`` is; build one per cold start and reuse it."""

    def __init__(
        self,
        base_url: str,
        api_key: Callable[[], str],
        *,
        meld_version: str = DEFAULT_MELD_VERSION,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        deadline_seconds: float = 20.0,
        max_attempts: int = 4,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = random.random,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if deadline_seconds <= 0:
            raise ValueError("deadline_seconds must be positive")
        self._api_key = api_key
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._deadline_seconds = deadline_seconds
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._monotonic = monotonic
        self._random = random
        self._http = httpx.Client(
            base_url=base_url,
            timeout=self._timeout,
            transport=transport,
            headers={"Accept": "application/json", "Meld-Version": meld_version},
            follow_redirects=False,
        )

    # -- connections --

    def get_connection(self, connection_id: str) -> MeldConnectionInfo:
        response = self._call("GET", _connection_path(connection_id))
        return parse(response, MeldConnectionInfo)

    def list_connections(
        self,
        external_customer_id: str | None = None,
        *,
        institution_id: str | None = None,
        statuses: Sequence[str] | None = None,
        limit: int | None = None,
        after: str | None = None,
        before: str | None = None,
    ) -> ConnectionPage:
        """Meld's search: every filter given, one page of ``limit`` after (or before) a connection's ``key``."""
        if after is not None and before is not None:
            raise ValueError("Meld takes one cursor: after or before, not both")
        params: dict[str, str] = {}
        if external_customer_id is not None:
            params["externalCustomerId"] = external_customer_id
        if institution_id is not None:
            params["institutionId"] = institution_id
        if statuses:
            params["statuses"] = ",".join(_names(statuses))
        if limit is not None:
            params["limit"] = str(limit)
        if after is not None:
            params["after"] = after
        if before is not None:
            params["before"] = before
        response = self._call("GET", "/bank-linking/connections", params=params)
        return parse(response, ConnectionPage)

    def start_connection(
        self,
        external_customer_id: str,
        *,
        institution_id: str | None = None,
        products: Sequence[str] | None = None,
        optional_products: Sequence[str] | None = None,
        regions: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> NewConnectionGrant:
        body: dict[str, Any] = {"externalCustomerId": external_customer_id}
        if institution_id is not None:
            body["institutionId"] = institution_id
        if products is not None:
            body["products"] = _names(products)
        if optional_products is not None:
            body["optionalProducts"] = _names(optional_products)
        if regions is not None:
            body["regions"] = _names(regions)
        # Each start creates a connection, and Meld documents no way to recognise a repeat: it is retried only when
        # Meld surely did not take it.
        response = self._call(
            "POST", "/bank-linking/connect/start", body=body, idempotency_key=idempotency_key, repeatable=False
        )
        return parse(response, NewConnectionGrant)

    def repair_connection(self, connection_id: str, *, idempotency_key: str | None = None) -> RepairGrant:
        _check_id(connection_id)
        # The id goes in the body, not the path (Meld's reference).
        response = self._call(
            "POST",
            "/bank-linking/connect/repair",
            body={"connectionId": connection_id},
            idempotency_key=idempotency_key,
        )
        return parse(response, RepairGrant)

    def delete_connection(self, connection_id: str) -> None:
        # Whatever the body says, success is the status; the CONNECTION_DELETED webhook confirms it.
        self._call("DELETE", _connection_path(connection_id))

    # -- lifecycle --

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- the call itself --

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        repeatable: bool = True,
    ) -> httpx.Response:
        """Send one logical call, retrying what is worth retrying; return the 2xx response or raise ``MeldError``.

        Not ``repeatable``: retried only after an answer that says Meld did not take it (429, 503) or a connection that
        never opened, never after a timeout or another 5xx (it may have been taken).
        """
        started = self._monotonic()
        headers: dict[str, str] = {}
        if method == "POST":
            # One key per logical call, reused by every retry: Meld can recognise a repeat of a POST it already took.
            headers["X-Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        failure: MeldError
        cause: httpx.TransportError | None
        for attempt in range(1, self._max_attempts + 1):
            remaining = self._deadline_seconds - (self._monotonic() - started)
            # Resolved per attempt: the key comes from a cache that may have been refreshed since.
            headers["Authorization"] = f"BASIC {self._api_key()}"
            request = self._http.build_request(
                method, path, params=params, json=body, headers=headers, timeout=self._attempt_timeout(remaining)
            )
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                failure, cause = MeldUnavailable(f"{type(exc).__name__} calling Meld"), exc
                if not repeatable and not isinstance(exc, NOT_SENT):
                    self._log_failure(logging.WARNING, "Meld call failed; outcome unknown", request, failure, attempt)
                    raise failure from cause
            else:
                if response.is_success:
                    return response
                failure, cause = error_from(response), None
                status = failure.status_code
                if status is None or not _is_retryable(status) or (not repeatable and status not in NOT_TAKEN):
                    self._log_failure(logging.WARNING, "Meld call failed", request, failure, attempt)
                    raise failure
            if attempt == self._max_attempts:
                self._log_failure(logging.WARNING, "Meld call failed; out of attempts", request, failure, attempt)
                raise failure from cause
            delay = failure.retry_after if failure.retry_after is not None else self._backoff(attempt)
            # A retry is worth making only with some time left for it after the wait.
            if self._monotonic() - started + delay + MIN_ATTEMPT_SECONDS >= self._deadline_seconds:
                self._log_failure(logging.WARNING, "Meld call failed; no time left to retry", request, failure, attempt)
                raise failure from cause
            self._log_failure(logging.WARNING, "Meld call failed; retrying", request, failure, attempt, delay=delay)
            self._sleep(delay)
        raise AssertionError("unreachable: every attempt returns or raises by the last one")

    def _attempt_timeout(self, remaining: float) -> httpx.Timeout:
        """The configured timeouts, none longer than what is left of the call's deadline."""
        remaining = max(remaining, MIN_ATTEMPT_SECONDS)

        def cap(seconds: float | None) -> float:
            return remaining if seconds is None else min(seconds, remaining)

        timeout = self._timeout
        return httpx.Timeout(
            connect=cap(timeout.connect), read=cap(timeout.read), write=cap(timeout.write), pool=cap(timeout.pool)
        )

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(attempt-1)))."""
        return self._random() * min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** (attempt - 1))

    def _log_failure(
        self,
        level: int,
        event: str,
        request: httpx.Request,
        failure: MeldError,
        attempt: int,
        *,
        delay: float | None = None,
    ) -> None:
        # Method, path (no query: it carries customer ids), status, code and requestId only; never headers or bodies.
        fields: dict[str, object] = {
            "meld_method": request.method,
            "meld_path": request.url.path,
            "meld_status": failure.status_code,
            "meld_code": failure.code,
            "meld_request_id": failure.request_id,
            "meld_attempt": attempt,
            "meld_max_attempts": self._max_attempts,
            "meld_error": type(failure).__name__,
        }
        if delay is not None:
            fields["meld_retry_in_seconds"] = round(delay, 3)
        logger.log(
            level,
            "%s: %s %s status=%s code=%s requestId=%s attempt=%d/%d",
            event,
            request.method,
            request.url.path,
            failure.status_code,
            failure.code,
            failure.request_id,
            attempt,
            self._max_attempts,
            extra=fields,
        )


def _check_id(connection_id: str) -> None:
    # Ids reach us from API paths; "." and ".." would change which Meld resource we address.
    if not connection_id or connection_id in {".", ".."}:
        raise ValueError("connection_id must be a non-empty Meld id")


def _connection_path(connection_id: str) -> str:
    _check_id(connection_id)
    return f"/bank-linking/connections/{quote(connection_id, safe='')}"


def _names(values: Sequence[str]) -> list[str]:
    # A bare str is a Sequence[str] too; joining it would send one letter per item.
    return [values] if isinstance(values, str) else list(values)
