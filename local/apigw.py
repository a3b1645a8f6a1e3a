"""API Gateway HTTP API (payload format 2.0) events, built the way API Gateway builds them.

Used by the local gateway, by the generator of events/*.json and by tests, so all three send handlers one shape.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# API Gateway passes text bodies as-is and base64-encodes everything else (and text that is not UTF-8).
_TEXT_TYPES = ("application/json", "text/", "application/xml", "application/x-www-form-urlencoded")


def http_api_event(
    method: str,
    path: str,
    *,
    route_key: str | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    query: Mapping[str, str] | None = None,
    path_parameters: Mapping[str, str] | None = None,
    jwt_claims: Mapping[str, Any] | None = None,
    jwt_scopes: list[str] | None = None,
    raw_query: str | None = None,
    cookies: list[str] | None = None,
    domain_name: str = "127.0.0.1:3000",
    source_ip: str = "127.0.0.1",
    force_base64: bool | None = None,
    now: datetime | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    moment = now or datetime.now(UTC)
    lower_headers = {name.lower(): value for name, value in (headers or {}).items()}
    content_type = lower_headers.get("content-type", "")
    is_base64 = force_base64 if force_base64 is not None else not content_type.startswith(_TEXT_TYPES)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": raw_query
        if raw_query is not None
        else "&".join(f"{key}={value}" for key, value in (query or {}).items()),
        "headers": lower_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": domain_name,
            "domainPrefix": domain_name.split(".", maxsplit=1)[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lower_headers.get("user-agent", ""),
            },
            "requestId": request_id or uuid.uuid4().hex,
            "routeKey": route_key or f"{method} {path}",
            "stage": "$default",
            "time": moment.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(moment.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = list(cookies)
    if query:
        event["queryStringParameters"] = dict(query)
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if jwt_claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": dict(jwt_claims), "scopes": jwt_scopes}}
    if body is not None:
        text = None if is_base64 else _utf8(body)
        if text is None:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
    return event


def _utf8(body: bytes) -> str | None:
    """The body as text, or None when it is not UTF-8 (API Gateway then base64-encodes it, whatever its type)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None
