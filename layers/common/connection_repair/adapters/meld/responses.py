"""Reading Meld's HTTP responses: a 2xx body as its model, anything else as its typed error. Never logs a body."""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import ValidationError

from connection_repair.adapters.meld.errors import ERRORS_BY_STATUS, MeldBadResponse, MeldError, MeldUnavailable
from connection_repair.adapters.meld.models import MeldResponse

logger = logging.getLogger(__name__)

# Meld's error messages are short; a longer one is not worth carrying into logs and exceptions.
_MAX_MESSAGE_CHARS = 500


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = json.loads(response.content)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _text(value: object) -> str | None:
    return value[:_MAX_MESSAGE_CHARS] if isinstance(value, str) and value else None


def error_from(response: httpx.Response) -> MeldError:
    """The typed error for a non-2xx response; Meld's ``{code, message, requestId}`` when the body has them."""
    status = response.status_code
    if status < 400:
        # 1xx/3xx: we do not follow redirects; a moved API is a deployment problem, not a retryable one.
        return MeldBadResponse(f"unexpected status {status}", status_code=status)
    error_class = ERRORS_BY_STATUS.get(status) or (MeldUnavailable if status >= 500 else MeldError)
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


def parse[M: MeldResponse](response: httpx.Response, model: type[M]) -> M:
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
