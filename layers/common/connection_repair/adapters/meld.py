"""Meld's bank-linking API over httpx: the one client every function uses to call Meld.

Retries 429, 5xx, timeouts and transport errors with full-jitter backoff, honours ``Retry-After``, and never waits
past a per-call deadline (the Repair API must answer inside API Gateway's 29 s). A POST keeps one idempotency key
across its retries, so retrying it is safe. Responses become pydantic models that drop unknown fields, which keeps
``serviceProviderDetails`` (it can hold provider access tokens) out of everything we hold. Nothing secret is logged:
no API key, connect token, widget URL or body.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import quote

import httpx
from pydantic import ConfigDict, Field, ValidationError

from connection_repair.models import CamelModel
from connection_repair.ports import MeldFailure, MeldFailureKind

logger = logging.getLogger(__name__)

DEFAULT_MELD_VERSION = "2025-03-04"
DEFAULT_TIMEOUT = httpx.Timeout(connect=2.0, read=8.0, write=8.0, pool=2.0)
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_CAP_SECONDS = 4.0
# Meld's error messages are short; a longer one is not worth carrying into logs and exceptions.
_MAX_MESSAGE_CHARS = 500


# --- Responses -------------------------------------------------------------------------------------------------


class MeldResponse(CamelModel):
    """A Meld response body. Unknown fields are dropped: that is how ``serviceProviderDetails`` never gets in."""

    # Not frozen: ``ports.MeldConnection`` declares plain attributes, which a frozen model would not satisfy.
    model_config = ConfigDict(extra="ignore")


class MeldConnectionInfo(MeldResponse):
    """GET /bank-linking/connections/{id}; satisfies ``ports.MeldConnection``."""

    connection_id: str = Field(alias="id", min_length=1)
    account_id: str | None = None
    customer_id: str | None = None
    external_customer_id: str | None = None
    institution_id: str | None = None
    institution_name: str | None = None
    status: str | None = None
    status_reason: str | None = None
    products: list[str] | None = None
    created_at: datetime | None = None
    duplicate_connection_ids: list[str] | None = None
    active_duplicate_connection_id: str | None = None


class ConnectionPage(MeldResponse):
    """One page of GET /bank-linking/connections; ``remaining`` says how many follow."""

    connections: list[MeldConnectionInfo]
    count: int | None = None
    remaining: int | None = None


class ConnectSession(MeldResponse):
    """POST /bank-linking/connect/start: a new connection and the token that opens the widget for it."""

    connection_id: str = Field(alias="id", min_length=1)
    # Whoever holds the token can link accounts to this customer: kept out of repr, so out of logs.
    connect_token: str = Field(min_length=1, repr=False)
    widget_url: str = Field(min_length=1, repr=False)
    customer_id: str | None = None
    external_customer_id: str | None = None


class RepairGrant(MeldResponse):
    """POST /bank-linking/connect/repair: the same connection, and a token that reopens the widget for it."""

    connection_id: str = Field(alias="id", min_length=1)
    connect_token: str = Field(min_length=1, repr=False)
    widget_url: str = Field(min_length=1, repr=False)
    institution_id: str | None = None


# --- Errors ----------------------------------------------------------------------------------------------------


class MeldError(MeldFailure):
    """A Meld call that failed, typed by Meld's answer; to the domain it is the ``MeldFailure`` of its ``KIND``.
    ``status_code`` is None when no response arrived (timeout, connection error)."""

    # Any other 4xx (e.g. 410): Meld refused it; nothing to retry.
    KIND: ClassVar[MeldFailureKind] = MeldFailureKind.REJECTED

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            self.KIND, message, status_code=status_code, code=code, request_id=request_id, retry_after=retry_after
        )

    def __str__(self) -> str:
        status = f"HTTP {self.status_code}" if self.status_code is not None else "no response"
        code = f" {self.code}" if self.code else ""
        request = f" (requestId {self.request_id})" if self.request_id else ""
        return f"Meld {status}{code}: {self.message}{request}"


class MeldBadRequest(MeldError):
    """400/422: Meld rejected what we sent."""

    KIND = MeldFailureKind.REJECTED


class MeldAuthError(MeldError):
    """401/403: wrong key, or a key for the other environment. A configuration problem, not the customer's."""

    KIND = MeldFailureKind.MISCONFIGURED


class MeldNotFound(MeldError):
    """404: unknown id (or an id from the other environment)."""

    KIND = MeldFailureKind.NOT_FOUND


class MeldConflict(MeldError):
    """409: the connection's state forbids it (e.g. repairing an EXPIRED, DELETED or IN_PROGRESS connection)."""

    KIND = MeldFailureKind.CONFLICT


class MeldRateLimited(MeldError):
    """429 that outlasted the retries or the deadline; ``retry_after`` says when Meld expects us back, if it did."""

    KIND = MeldFailureKind.UNAVAILABLE


class MeldUnavailable(MeldError):
    """5xx, timeouts or connection errors that outlasted the retries or the deadline."""

    KIND = MeldFailureKind.UNAVAILABLE


class MeldBadResponse(MeldError):
    """A response we cannot use: not 2xx without being an error, not JSON, or not the documented shape."""

    KIND = MeldFailureKind.BAD_RESPONSE


_ERRORS_BY_STATUS: dict[int, type[MeldError]] = {
    400: MeldBadRequest,
    422: MeldBadRequest,
    401: MeldAuthError,
    403: MeldAuthError,
    404: MeldNotFound,
    409: MeldConflict,
    429: MeldRateLimited,
}


# The least time an attempt is given; a retry that would have less is not made.
MIN_ATTEMPT_SECONDS = 0.05


def _is_retryable(status_code: int) -> bool:
    return status_code == 429 or status_code >= 500


# --- Client ----------------------------------------------------------------------------------------------------


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
        return _parse(response, MeldConnectionInfo)

    def list_connections(
        self,
        external_customer_id: str,
        statuses: Sequence[str] | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> ConnectionPage:
        params = {"externalCustomerId": external_customer_id}
        if statuses:
            params["statuses"] = ",".join(_names(statuses))
        if limit is not None:
            params["limit"] = str(limit)
        if after is not None:
            params["after"] = after
        response = self._call("GET", "/bank-linking/connections", params=params)
        return _parse(response, ConnectionPage)

    def start_connection(
        self,
        external_customer_id: str,
        *,
        institution_id: str | None = None,
        products: Sequence[str] | None = None,
        optional_products: Sequence[str] | None = None,
        regions: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> ConnectSession:
        body: dict[str, Any] = {"externalCustomerId": external_customer_id}
        if institution_id is not None:
            body["institutionId"] = institution_id
        if products is not None:
            body["products"] = _names(products)
        if optional_products is not None:
            body["optionalProducts"] = _names(optional_products)
        if regions is not None:
            body["regions"] = _names(regions)
        response = self._call("POST", "/bank-linking/connect/start", body=body, idempotency_key=idempotency_key)
        return _parse(response, ConnectSession)

    def repair_connection(self, connection_id: str, *, idempotency_key: str | None = None) -> RepairGrant:
        _check_id(connection_id)
        # The id goes in the body, not the path (Meld's reference).
        response = self._call(
            "POST",
            "/bank-linking/connect/repair",
            body={"connectionId": connection_id},
            idempotency_key=idempotency_key,
        )
        return _parse(response, RepairGrant)

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
    ) -> httpx.Response:
        """Send one logical call, retrying what is worth retrying; return the 2xx response or raise ``MeldError``."""
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
            else:
                if response.is_success:
                    return response
                failure, cause = _error_from(response), None
                if failure.status_code is None or not _is_retryable(failure.status_code):
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


class MeldConnectionDirectory:
    """``ports.ConnectionDirectory`` over a ``MeldClient``: a connection Meld does not know is None, not an error."""

    def __init__(self, client: MeldClient) -> None:
        self._client = client

    def get_connection(self, connection_id: str) -> MeldConnectionInfo | None:
        try:
            return self._client.get_connection(connection_id)
        except MeldNotFound:
            return None


# --- Helpers ---------------------------------------------------------------------------------------------------


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


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = json.loads(response.content)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _text(value: object) -> str | None:
    return value[:_MAX_MESSAGE_CHARS] if isinstance(value, str) and value else None


def _error_from(response: httpx.Response) -> MeldError:
    """The typed error for a non-2xx response; Meld's ``{code, message, requestId}`` when the body has them."""
    status = response.status_code
    if status < 400:
        # 1xx/3xx: we do not follow redirects; a moved API is a deployment problem, not a retryable one.
        return MeldBadResponse(f"unexpected status {status}", status_code=status)
    error_class = _ERRORS_BY_STATUS.get(status) or (MeldUnavailable if status >= 500 else MeldError)
    # Read whatever the content type claims: an HTML error page from a proxy still gets its typed error.
    body = _json_object(response) or {}
    return error_class(
        _text(body.get("message")) or response.reason_phrase or "error",
        status_code=status,
        code=_text(body.get("code")),
        request_id=_text(body.get("requestId")),
        retry_after=_retry_after(response),
    )


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or HTTP date); None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = (_aware(when) - _server_now(response)).total_seconds()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _server_now(response: httpx.Response) -> datetime:
    # An HTTP date is relative to the server's clock; its Date header avoids our clock skew when present.
    date = response.headers.get("date")
    if date is not None:
        try:
            return _aware(parsedate_to_datetime(date))
        except (TypeError, ValueError, IndexError):
            pass
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parse[M: MeldResponse](response: httpx.Response, model: type[M]) -> M:
    """Validate a 2xx body as ``model``; anything else is ``MeldBadResponse``, logged without the body."""
    try:
        return model.model_validate(_json_body(response))
    except MeldBadResponse as exc:
        failure = exc
    except ValidationError as exc:
        # Only locations and error types: pydantic's own message quotes the input, tokens included.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '<body>'}: {error['type']}"
            for error in exc.errors(include_url=False, include_context=False, include_input=False)
        )
        failure = MeldBadResponse(
            f"response is not a valid {model.__name__}: {problems}", status_code=response.status_code
        )
    request = response.request
    logger.warning(
        "Meld response unusable: %s %s status=%s error=%s",
        request.method,
        request.url.path,
        response.status_code,
        failure.message,
        extra={"meld_method": request.method, "meld_path": request.url.path, "meld_status": response.status_code},
    )
    raise failure


def _json_body(response: httpx.Response) -> object:
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise MeldBadResponse(f"expected JSON, got {media_type or 'no content type'}", status_code=response.status_code)
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError):
        raise MeldBadResponse("response body is not valid JSON", status_code=response.status_code) from None
