"""A local API Gateway HTTP API: the template's routes, its JWT authorizer, payload format 2.0 events and responses."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local.apigw import http_api_event
from local.config import HOST
from local.functions import FunctionPool, InvocationError
from local.jwt_tokens import DiscoveredKeys, JwtSettings, Unauthorized, VerificationKeys, api_gateway_claims, verify
from local.serving import ServedInBackground
from local.template import Cors, HttpRoute

logger = logging.getLogger(__name__)

# API Gateway's own limits: 10 MB request payload, 30 s integration timeout.
MAX_BODY_BYTES = 10 * 1024 * 1024
INTEGRATION_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Match:
    route: HttpRoute
    path_parameters: dict[str, str]


def _specificity(route: HttpRoute) -> tuple[int, int, int, int]:
    # API Gateway prefers the most specific route: no greedy variable, more literal segments, then an exact method.
    if route.path == "$default":
        return (2, 0, 0, 1)
    segments = route.path.strip("/").split("/")
    literals = sum(1 for segment in segments if not segment.startswith("{"))
    greedy = 1 if route.path.endswith("+}") else 0
    return (greedy, -literals, -len(segments), 1 if route.method == "ANY" else 0)


def match_route(routes: Sequence[HttpRoute], method: str, raw_path: str) -> Match | None:
    candidates: list[Match] = []
    request = [unquote(segment) for segment in raw_path.strip("/").split("/")]
    for route in routes:
        if route.method not in (method, "ANY"):
            continue
        if route.path == "$default":
            candidates.append(Match(route, {}))
            continue
        parameters = _match_path(route.path.strip("/").split("/"), request)
        if parameters is not None:
            candidates.append(Match(route, parameters))
    return min(candidates, key=lambda found: _specificity(found.route), default=None)


def _match_path(template: list[str], request: list[str]) -> dict[str, str] | None:
    parameters: dict[str, str] = {}
    for index, segment in enumerate(template):
        if segment.startswith("{") and segment.endswith("+}"):
            rest = request[index:]
            if not rest or rest == [""]:
                return None
            parameters[segment[1:-2]] = "/".join(rest)
            return parameters
        if index >= len(request):
            return None
        if segment.startswith("{") and segment.endswith("}"):
            if not request[index]:
                return None
            parameters[segment[1:-1]] = request[index]
        elif segment != request[index]:
            return None
    return parameters if len(template) == len(request) else None


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _message(status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> HttpResponse:
    body = json.dumps({"message": message}).encode()
    return HttpResponse(status, [("content-type", "application/json"), *headers], body)


def lambda_response(result: Any) -> HttpResponse:
    """Payload format 2.0: a {"statusCode", ...} object as given; anything else is a 200 with the value as JSON."""
    if not (isinstance(result, dict) and "statusCode" in result):
        text = result if isinstance(result, str) else json.dumps(result)
        return HttpResponse(200, [("content-type", "application/json")], text.encode())
    try:
        status = int(result["statusCode"])
        headers = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
        headers += [("set-cookie", str(cookie)) for cookie in result.get("cookies") or []]
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    except (TypeError, ValueError, AttributeError):
        logger.exception("malformed Lambda response")
        return _message(500, "Internal Server Error")
    return HttpResponse(status, headers, body)


class Gateway(ServedInBackground):
    """Serves ``routes`` on 127.0.0.1:``port`` from a background thread; ``stop()`` ends it."""

    def __init__(
        self,
        routes: Sequence[HttpRoute],
        pools: Mapping[str, FunctionPool],
        authorizers: Mapping[str, JwtSettings],
        port: int,
        cors: Cors | None = None,
    ) -> None:
        self.routes = list(routes)
        self._cors = cors
        self._pools = pools
        self._authorizers = authorizers
        # API Gateway reads each issuer's keys from its discovery document and JWKS, and caches them.
        keys: dict[str, VerificationKeys] = {}
        self._keys = {name: keys.setdefault(s.issuer, DiscoveredKeys(s.issuer)) for name, s in authorizers.items()}
        server = _Server((HOST, port), _Handler)
        server.gateway = self
        self._serve(server, "gateway")

    @property
    def domain_name(self) -> str:
        return f"{HOST}:{self.port}"

    def handle(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> HttpResponse:
        origin = next((value for name, value in headers if name.lower() == "origin"), None)
        if self._cors is None or origin is None:
            return self._route(method, target, headers, body)
        preflight = method == "OPTIONS" and any(name.lower() == "access-control-request-method" for name, _ in headers)
        # With CORS configured, API Gateway answers preflights itself and adds the CORS headers to every answer.
        response = HttpResponse(204, [], b"") if preflight else self._route(method, target, headers, body)
        return HttpResponse(
            response.status, response.headers + _cors_headers(self._cors, origin, preflight), response.body
        )

    def _route(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> HttpResponse:
        url = urlsplit(target)
        found = match_route(self.routes, method, url.path)
        if found is None:
            return _message(404, "Not Found")
        route = found.route
        # HTTP APIs join repeated headers and query parameters with commas, and pass cookies on their own.
        lower: dict[str, str] = {}
        cookies: list[str] = []
        for name, value in headers:
            if name.lower() == "cookie":
                cookies += [part.strip() for part in value.split(";") if part.strip()]
            else:
                lower[name.lower()] = f"{lower[name.lower()]},{value}" if name.lower() in lower else value
        query: dict[str, str] = {}
        for name, value in parse_qsl(url.query, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        claims: dict[str, str] | None = None
        if route.authorizer is not None:
            settings = self._authorizers.get(route.authorizer)
            if settings is None:
                logger.error("%s: authorizer %s is not a JWT authorizer", route.route_key, route.authorizer)
                return _message(500, "Internal Server Error")
            try:
                token = lower.get(settings.header)
                claims = api_gateway_claims(verify(token, settings, self._keys[route.authorizer], route.scopes))
            except Unauthorized as reason:
                logger.info("401 for %s %s: %s", method, url.path, reason)
                return _message(401, "Unauthorized", [("www-authenticate", 'Bearer error="invalid_token"')])
        event = http_api_event(
            method,
            url.path,
            route_key=route.route_key,
            headers=lower,
            body=body if body or "content-length" in lower else None,
            query=query or None,
            raw_query=url.query,
            path_parameters=found.path_parameters or None,
            jwt_claims=claims,
            jwt_scopes=list(route.scopes) or None,
            cookies=cookies or None,
            domain_name=self.domain_name,
            request_id=str(uuid.uuid4()),
        )
        try:
            invocation = self._pools[route.function].invoke(event, timeout=INTEGRATION_TIMEOUT_SECONDS)
        except InvocationError as error:
            logger.error("%s %s → %s failed: %s", method, url.path, route.function, error)
            return _message(500, "Internal Server Error")
        response = lambda_response(invocation.result)
        logger.info(
            "%s %s → %s %d (%.0f ms)", method, url.path, route.function, response.status, invocation.duration_ms
        )
        return response


def _cors_headers(cors: Cors, origin: str, preflight: bool) -> list[tuple[str, str]]:
    if not cors.allows(origin):
        return []
    headers = [("access-control-allow-origin", "*" if "*" in cors.origins and not cors.credentials else origin)]
    if cors.credentials:
        headers.append(("access-control-allow-credentials", "true"))
    if preflight:
        headers += [
            ("access-control-allow-methods", ",".join(cors.methods)),
            ("access-control-allow-headers", ",".join(cors.headers)),
        ]
        if cors.max_age is not None:
            headers.append(("access-control-max-age", str(cors.max_age)))
    elif cors.expose:
        headers.append(("access-control-expose-headers", ",".join(cors.expose)))
    return headers


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    gateway: Gateway


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "LocalApiGateway/1.0"

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._write(_message(413, "Request Entity Too Large"))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length > 0 else b""
        try:
            response = self.server.gateway.handle(self.command, self.path, list(self.headers.items()), body)
        except Exception:
            logger.exception("gateway failure")
            response = _message(500, "Internal Server Error")
        self._write(response)

    def __getattr__(self, name: str) -> Any:
        # Every method (QUERY, TRACE, …) reaches the routes: one no route declares is API Gateway's 404, never the
        # HTTP server's 501.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("apigw-requestid", uuid.uuid4().hex[:16])
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)
