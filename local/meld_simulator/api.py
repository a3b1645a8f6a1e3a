"""HTTP surface: Meld's Bank Linking routes (authenticated, fault-injectable) and the ``/_sim`` control routes."""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local.meld_simulator.backend import ApiError, MeldBackend, bad_request
from local.meld_simulator.config import SimulatorConfig
from local.meld_simulator.faults import Fault, FaultError, FaultPlan, parse_fault
from local.meld_simulator.webhooks import WebhookDispatcher, iso_timestamp
from local.meld_simulator.widget import render_error, render_widget

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    # Lower-case names.
    headers: Mapping[str, str]
    body: bytes


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, value: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(value).encode("utf-8"), headers=dict(headers or {}))


def html_response(status: int, page: str, frame_ancestors: tuple[str, ...] = ()) -> Response:
    # Only the configured origins may frame a page (Meld's widget is framed by the app's page).
    ancestors = " ".join(frame_ancestors) or "'none'"
    headers = {"Cache-Control": "no-store", "Content-Security-Policy": f"frame-ancestors {ancestors}"}
    return Response(status, page.encode("utf-8"), "text/html; charset=utf-8", headers)


type Handler = Callable[[Request, re.Match[str]], Response]

_ID = r"(?P<id>[^/]+)"


class SimulatorApp:
    def __init__(
        self, config: SimulatorConfig, backend: MeldBackend, webhooks: WebhookDispatcher, faults: FaultPlan
    ) -> None:
        self._config = config
        self._backend = backend
        self._webhooks = webhooks
        self._faults = faults
        # Set on shutdown so a "timeout" fault does not hold the server open.
        self.stopping = threading.Event()
        # (method, path pattern, fault endpoint name, handler); Meld routes have an endpoint name, control routes None.
        self._meld_routes: list[tuple[str, re.Pattern[str], str, Handler]] = [
            ("POST", re.compile(r"/bank-linking/connect/start"), "start", self._start),
            ("POST", re.compile(r"/bank-linking/connect/repair"), "repair", self._repair),
            ("GET", re.compile(r"/bank-linking/connections"), "list", self._list),
            ("GET", re.compile(rf"/bank-linking/connections/{_ID}"), "get", self._get),
            ("DELETE", re.compile(rf"/bank-linking/connections/{_ID}"), "delete", self._delete),
        ]
        self._control_routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/_sim/health"), self._health),
            ("POST", re.compile(r"/_sim/reset"), self._reset),
            ("POST", re.compile(r"/_sim/connections"), self._sim_create),
            ("POST", re.compile(rf"/_sim/connections/{_ID}/status"), self._sim_status),
            ("POST", re.compile(r"/_sim/widget/complete"), self._widget_complete),
            ("GET", re.compile(r"/_sim/deliveries"), self._deliveries),
            ("DELETE", re.compile(r"/_sim/deliveries"), self._clear_deliveries),
            ("GET", re.compile(r"/_sim/events"), self._events),
            ("GET", re.compile(r"/_sim/faults"), self._list_faults),
            ("POST", re.compile(r"/_sim/faults"), self._add_fault),
            ("DELETE", re.compile(r"/_sim/faults"), self._clear_faults),
            ("GET", re.compile(r"/widget"), self._widget),
        ]

    def handle(self, request: Request) -> Response:
        try:
            if not request.path.startswith("/bank-linking/"):
                return self._handle_control(request)
            response = self._handle_meld(request)
        except Exception:
            logger.exception("%s %s failed", request.method, request.path)
            response = self.error_response(ApiError(500, "INTERNAL_SERVER_ERROR", "Simulator error"))
        version = request.headers.get("meld-version")
        if version:
            response.headers["Meld-Version"] = version
        return response

    # --- dispatch -------------------------------------------------------------------------------------------------

    def _handle_meld(self, request: Request) -> Response:
        try:
            self._authenticate(request)
            allowed = False
            for method, pattern, endpoint, handler in self._meld_routes:
                match = pattern.fullmatch(request.path)
                if match is None:
                    continue
                allowed = True
                if method != request.method:
                    continue
                fault = self._faults.take(endpoint)
                if fault is not None:
                    return self._fault_response(fault)
                return handler(request, match)
            if allowed:
                raise ApiError(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed on {request.path}")
            raise ApiError(404, "NOT_FOUND", f"No route for {request.method} {request.path}")
        except ApiError as error:
            return self.error_response(error)

    def _handle_control(self, request: Request) -> Response:
        try:
            for method, pattern, handler in self._control_routes:
                match = pattern.fullmatch(request.path)
                if match is not None and method == request.method:
                    return handler(request, match)
            raise ApiError(404, "NOT_FOUND", f"No route for {request.method} {request.path}")
        except ApiError as error:
            return self.error_response(error)

    def _authenticate(self, request: Request) -> None:
        # Meld's scheme: "BASIC <key>", the raw key (not base64 of user:password). The scheme word's case is lenient.
        scheme, _, key = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.upper() != "BASIC" or key.strip() != self._config.api_key:
            raise ApiError(401, "UNAUTHORIZED", "Missing or invalid API key", ["Authorization: BASIC <apiKey>"])

    def error_response(self, error: ApiError, headers: dict[str, str] | None = None) -> Response:
        body = {
            "code": error.code,
            "message": error.message,
            "errors": error.errors,
            "requestId": str(uuid.uuid4()),
            "timestamp": iso_timestamp(self._config.clock()),
        }
        return json_response(error.status, body, headers)

    def _fault_response(self, fault: Fault) -> Response:
        match fault.mode:
            case "500":
                return self.error_response(ApiError(500, "INTERNAL_SERVER_ERROR", "Simulated internal error"))
            case "429":
                retry_after = 1 if fault.retry_after is None else fault.retry_after
                return self.error_response(
                    ApiError(429, "TOO_MANY_REQUESTS", "Simulated rate limit"), {"Retry-After": str(retry_after)}
                )
            case "409":
                return self.error_response(ApiError(409, "CONFLICT", "Simulated conflict"))
            case "invalid_json":
                # A 200 whose body is cut off mid-way: the client must not trust a success status alone.
                return Response(200, b'{"id": "WQ4mBt3BEX2cmhCvSPyfTu", "connectToken": "ey')
            case "html":
                # What a CDN or load balancer in front of an API returns when the backend is down.
                page = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
                return Response(502, page.encode(), "text/html")
            case "timeout":
                self.stopping.wait(self._config.fault_timeout_seconds)
                return self.error_response(ApiError(504, "GATEWAY_TIMEOUT", "Simulated timeout"))
            case "drop":  # parse_fault allows it on webhooks only, never on an API route
                raise AssertionError("a drop fault applies to webhook deliveries")

    # --- Meld routes ----------------------------------------------------------------------------------------------

    def _start(self, request: Request, _: re.Match[str]) -> Response:
        return json_response(200, self._backend.start(_json_object(request)))

    def _repair(self, request: Request, _: re.Match[str]) -> Response:
        return json_response(200, self._backend.repair(_json_object(request)))

    def _list(self, request: Request, _: re.Match[str]) -> Response:
        return json_response(200, self._backend.list_connections(request.query))

    def _get(self, _: Request, match: re.Match[str]) -> Response:
        return json_response(200, self._backend.get(match["id"]))

    def _delete(self, _: Request, match: re.Match[str]) -> Response:
        return json_response(200, self._backend.delete(match["id"]))

    # --- control routes -------------------------------------------------------------------------------------------

    def _health(self, _: Request, __: re.Match[str]) -> Response:
        return json_response(200, {"status": "ok", "pendingDeliveries": self._webhooks.pending()})

    def _reset(self, _: Request, __: re.Match[str]) -> Response:
        self._backend.reset()
        self._webhooks.reset()
        self._faults.clear()
        return json_response(200, {"status": "reset"})

    def _sim_create(self, request: Request, _: re.Match[str]) -> Response:
        return json_response(201, self._backend.sim_create(_json_object(request)))

    def _sim_status(self, request: Request, match: re.Match[str]) -> Response:
        return json_response(200, self._backend.sim_set_status(match["id"], _json_object(request)))

    def _widget_complete(self, request: Request, _: re.Match[str]) -> Response:
        return json_response(200, self._backend.widget_complete(_json_object(request)))

    def _deliveries(self, _: Request, __: re.Match[str]) -> Response:
        return json_response(200, self._webhooks.attempts())

    def _clear_deliveries(self, _: Request, __: re.Match[str]) -> Response:
        self._webhooks.clear_attempts()
        return json_response(200, [])

    def _events(self, _: Request, __: re.Match[str]) -> Response:
        return json_response(200, self._webhooks.events())

    def _list_faults(self, _: Request, __: re.Match[str]) -> Response:
        return json_response(200, self._faults.pending())

    def _add_fault(self, request: Request, _: re.Match[str]) -> Response:
        try:
            fault = parse_fault(_json_object(request))
        except FaultError as error:
            raise bad_request(str(error)) from None
        self._faults.add(fault)
        return json_response(201, fault.to_json())

    def _clear_faults(self, _: Request, __: re.Match[str]) -> Response:
        self._faults.clear()
        return json_response(200, [])

    def _widget(self, request: Request, _: re.Match[str]) -> Response:
        token = (request.query.get("connectToken") or [""])[0]
        origins = self._config.widget_origins
        if not token:
            return html_response(400, render_error("The link has no connectToken.", origins=origins), origins)
        try:
            context = self._backend.widget_context(token)
        except ApiError as error:
            page = render_error(error.message, reason=error.code, origins=origins)
            return html_response(error.status, page, origins)
        page = render_widget(
            token=token, institution_name=context.institution_name, purpose=context.purpose, origins=origins
        )
        return html_response(200, page, origins)


def _json_object(request: Request) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    try:
        value = json.loads(request.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request("Request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise bad_request("Request body must be a JSON object")
    return value
