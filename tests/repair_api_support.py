"""Shared by the Repair API tests: a Meld stand-in on httpx's MockTransport and the handler wired to it and moto."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx

from connection_repair.adapters.dynamodb.connection_store import DynamoDBConnectionStore
from connection_repair.adapters.dynamodb.connections import DynamoDBCustomerConnections
from connection_repair.adapters.dynamodb.incidents import DynamoDBIncidentStore
from connection_repair.adapters.dynamodb.preferences import DynamoDBPreferencesStore
from connection_repair.adapters.meld.client import MeldClient
from connection_repair.adapters.meld.gateway import MeldConnectGateway, MeldConnectionDirectory
from connection_repair.domain.connection import Connection
from connection_repair.domain.status_policy import Action, classify
from connection_repair.repair.service import RepairService

CUSTOMER = "customer-123"
OTHER_CUSTOMER = "someone-else"
CONNECTION_ID = "WQ5RitxnrnggqcT8noLoZN"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def connect_token(exp: datetime, iat: datetime = NOW) -> str:
    claims = {"iss": "meld.io", "iat": int(iat.timestamp()), "exp": int(exp.timestamp())}
    header = _segment(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    return f"{header}.{_segment(json.dumps(claims).encode())}.{_segment(b'signature')}"


TOKEN = connect_token(NOW + timedelta(hours=4))
WIDGET_URL = f"https://institution-connect-sb.meld.io?connectToken={TOKEN}"

Responder = Callable[[httpx.Request], httpx.Response]


def meld_json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def meld_error(status: int, code: str = "ERROR", headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"code": code, "message": f"meld says {status}", "requestId": f"req-{status}", "timestamp": "x"}
    return httpx.Response(status, json=body, headers=headers)


@dataclass
class MeldStandIn:
    """Meld's connect endpoints; ``routes`` maps (method, path) to a responder, replaceable per test."""

    requests: list[httpx.Request] = field(default_factory=list)
    routes: dict[tuple[str, str], Responder] = field(default_factory=dict)
    started: int = 0

    def __post_init__(self) -> None:
        self.routes.setdefault(("POST", "/bank-linking/connect/repair"), self._repair)
        self.routes.setdefault(("POST", "/bank-linking/connect/start"), self._start)

    def _repair(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return meld_json(
            200,
            {
                "id": body["connectionId"],
                "connectToken": TOKEN,
                "institutionId": "Ntj3AwgdridJc2rtfeheku",
                "widgetUrl": WIDGET_URL,
            },
        )

    def _start(self, request: httpx.Request) -> httpx.Response:
        self.started += 1
        body = json.loads(request.content)
        return meld_json(
            200,
            {
                "id": f"new-connection-{self.started}",
                "connectToken": TOKEN,
                "customerId": "meld-customer-1",
                "externalCustomerId": body["externalCustomerId"],
                "widgetUrl": WIDGET_URL,
            },
        )

    def respond(self, method: str, path: str, responder: Responder | httpx.Response) -> None:
        self.routes[(method, path)] = responder if callable(responder) else (lambda _request: responder)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            if request.method == "DELETE":
                return httpx.Response(204)
            return meld_error(404, "NOT_FOUND")
        return route(request)

    def calls(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]


def meld_directory(stand_in: MeldStandIn) -> MeldConnectionDirectory:
    """Meld's GET /bank-linking/connections/{id}, answered by the stand-in."""
    client = MeldClient(
        "https://meld.invalid",
        lambda: "test-meld-api-key",
        transport=httpx.MockTransport(stand_in),
        sleep=lambda _seconds: None,
    )
    return MeldConnectionDirectory(client)


def meld_gateway(stand_in: MeldStandIn, *, deadline_seconds: float = 12.0, max_attempts: int = 3) -> MeldConnectGateway:
    client = MeldClient(
        "https://meld.invalid",
        lambda: "test-meld-api-key",
        transport=httpx.MockTransport(stand_in),
        deadline_seconds=deadline_seconds,
        max_attempts=max_attempts,
        sleep=lambda _seconds: None,
    )
    return MeldConnectGateway(client)


def store_for(table_name: str) -> DynamoDBCustomerConnections:
    """The connections as the Repair API reads and writes them."""
    return DynamoDBCustomerConnections(boto3.client("dynamodb"), table_name)


def connection_store_for(table_name: str) -> DynamoDBConnectionStore:
    """The connections and events as ingestion and the replacer write them."""
    return DynamoDBConnectionStore(boto3.client("dynamodb"), table_name, event_ttl=timedelta(days=90))


def preferences_for(table_name: str) -> DynamoDBPreferencesStore:
    return DynamoDBPreferencesStore(boto3.client("dynamodb"), table_name)


def repair_service(
    table_name: str, stand_in: MeldStandIn, clock: Callable[[], datetime] = lambda: NOW
) -> RepairService:
    return RepairService(
        connections=store_for(table_name),
        preferences=preferences_for(table_name),
        meld=meld_gateway(stand_in),
        incidents=DynamoDBIncidentStore(boto3.client("dynamodb"), table_name),
        clock=clock,
    )


def connection(
    connection_id: str = CONNECTION_ID,
    *,
    customer: str | None = CUSTOMER,
    status: str = "RECONNECT_REQUIRED",
    reason: str | None = "LOGIN_REQUIRED",
    **fields: Any,
) -> Connection:
    action = classify(status, reason)
    values: dict[str, Any] = {
        "connection_id": connection_id,
        "external_customer_id": customer,
        "institution_id": "Ntj3AwgdridJc2rtfeheku",
        "institution_name": "Chase",
        "status": status,
        "status_reason": reason,
        "action": action,
        "last_event_at": NOW - timedelta(hours=1),
        "last_event_id": "evt-1",
        "version": 1,
    }
    if action in (Action.REPAIR, Action.RENEW_ACCESS, Action.ADD_ACCOUNTS):
        values |= {"episode_id": "episode-1", "episode_action": action, "attention_since": NOW - timedelta(hours=1)}
    return Connection(**(values | fields))


@dataclass
class RepairApi:
    """The real handler, on moto's table and a Meld stand-in."""

    table_name: str
    meld: MeldStandIn
    service: RepairService

    @property
    def store(self) -> DynamoDBCustomerConnections:
        return store_for(self.table_name)

    @property
    def preferences(self) -> DynamoDBPreferencesStore:
        return preferences_for(self.table_name)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        from functions.repair_api import app
        from tests.support import LambdaContext

        response: dict[str, Any] = app.lambda_handler(event, LambdaContext())
        return response

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        sub: str | None = CUSTOMER,
        raw_body: bytes | None = None,
        claims: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """One request as API Gateway would pass it on; returns (status, headers, decoded JSON body)."""
        from local.apigw import http_api_event

        sent = {"content-type": "application/json"} if body is not None or raw_body is not None else {}
        headers = sent | (headers or {})
        raw = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
        segments = path.strip("/").split("/")
        path_parameters = {"connectionId": segments[1]} if len(segments) >= 2 and segments[0] == "connections" else None
        route = "/" + "/".join(
            "{connectionId}" if index == 1 and path_parameters else part for index, part in enumerate(segments)
        )
        jwt_claims = claims if claims is not None else ({"sub": sub} if sub is not None else None)
        event = http_api_event(
            method,
            path,
            route_key=f"{method} {route}",
            headers=headers,
            body=raw,
            path_parameters=path_parameters,
            jwt_claims=jwt_claims,
            query=query,
        )
        response = self.invoke(event)
        text = response.get("body") or ""
        return response["statusCode"], response.get("headers", {}), json.loads(text) if text else None


def install_repair_api(table_name: str, monkeypatch: Any, meld: MeldStandIn | None = None) -> RepairApi:
    """Point the handler at moto and the stand-in; the wiring's own factory is replaced, nothing else."""
    from connection_repair.wiring.repair_api import repair_api_settings, request_records
    from functions.repair_api import app

    monkeypatch.setenv("TABLE_NAME", table_name)
    monkeypatch.setenv("MELD_API_KEY", "test-meld-api-key")
    monkeypatch.delenv("CUSTOMER_ID_CLAIM", raising=False)
    repair_api_settings.cache_clear()
    request_records.cache_clear()  # the real one, on this test's table
    stand_in = meld or MeldStandIn()
    service = repair_service(table_name, stand_in)
    monkeypatch.setattr(app, "repair_service", lambda: service)
    return RepairApi(table_name=table_name, meld=stand_in, service=service)
