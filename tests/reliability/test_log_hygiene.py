"""Log hygiene: every flow runs with its logs captured, failures included, and none of the secrets that
flowed through it appears: connect tokens and widget URLs Meld returned, the Meld API key, the webhook secret,
signatures, the caller's JWT, or anything of ``serviceProviderDetails``.

The secrets are the values the flows really carried (fresh random ones per run), not fixed strings. Captured:
Powertools' JSON logs and stdout (``captured_logs``) and every standard-library log record with all its extra
fields (the Meld client logs through ``logging``), rendered in full.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import httpx
import pytest

from connection_repair.adapters.eventbridge import event_detail
from connection_repair.adapters.meld.client import MeldClient
from connection_repair.adapters.meld.gateway import MeldConnectionDirectory
from connection_repair.outbox import outbox
from connection_repair.preferences.model import Channel
from connection_repair.repair.ports import MeldFailure
from functions.connection_replacer import app as replacer_app
from functions.notifier import app as notifier_app
from functions.webhook_ingest import app as webhook_app
from local.apigw import http_api_event
from local.aws_resources import LocalResources
from local.make_events import LOCAL_WEBHOOK_SECRET, envelope
from local.make_notifier_events import queued
from tests.notifier_support import T0, Clock, attention, build_notifier, sent_emails
from tests.repair_api_support import (
    CONNECTION_ID,
    CUSTOMER,
    NOW,
    MeldStandIn,
    RepairApi,
    connect_token,
    connection,
    connection_store_for,
    install_repair_api,
    meld_directory,
    meld_error,
    meld_gateway,
    meld_json,
    store_for,
)
from tests.support import LambdaContext, signed_delivery, status_change

API_KEY = "test-meld-api-key"  # what install_repair_api and webhook_env configure


class RecordDump(logging.Handler):
    """Every record at INFO and above (the functions' level), with its message, extra fields and traceback."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = {key: value for key, value in vars(record).items() if key not in ("args", "msg", "exc_info")}
        text = json.dumps(fields, default=repr)
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(record.getMessage() + " " + text)


@dataclass
class Secrets:
    """Every secret value the flows handled; ``leaks`` names those found in the logs."""

    values: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: str) -> str:
        assert len(value) >= 8, f"{name} is too short to search for"
        self.values[f"{name} #{len(self.values)}"] = value
        return value

    def leaks(self, logs: str) -> list[str]:
        return [name for name, value in self.values.items() if value in logs]


@pytest.fixture
def logs(captured_logs: Callable[[], str]) -> Iterator[Callable[[], str]]:
    dump = RecordDump()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(dump)
    root.setLevel(logging.INFO)
    try:
        yield lambda: captured_logs() + "\n".join(dump.lines)
    finally:
        root.removeHandler(dump)
        root.setLevel(previous)


def fresh_token() -> str:
    """A connect token like Meld's (a JWT), different every time."""
    return connect_token(NOW + timedelta(hours=4), iat=NOW - timedelta(seconds=secrets.randbelow(10_000)))


@dataclass
class TokenIssuingMeld:
    """Meld's connect endpoints answering fresh tokens and widget URLs (and provider details we must drop)."""

    secrets: Secrets
    provider_secret: str

    def session(self, request: httpx.Request, **extra: Any) -> httpx.Response:
        token = self.secrets.add("connect token", fresh_token())
        widget_token = self.secrets.add("widget URL token", secrets.token_urlsafe(24))
        self.secrets.add("widget URL", f"https://institution-connect-sb.meld.io?connectToken={widget_token}")
        body = json.loads(request.content)
        return meld_json(
            200,
            {
                "id": body.get("connectionId") or "new-connection-1",
                "connectToken": token,
                "widgetUrl": f"https://institution-connect-sb.meld.io?connectToken={widget_token}",
                "customerId": "meld-customer-1",
                "serviceProviderDetails": {"serviceProvider": "PLAID", "accessToken": self.provider_secret},
                **extra,
            },
        )


def bearer(secrets_: Secrets) -> dict[str, str]:
    jwt = secrets_.add("caller's JWT", fresh_token())
    return {"authorization": f"Bearer {jwt}", "content-type": "application/json"}


def api_request(
    api: RepairApi, secrets_: Secrets, method: str, path: str, route: str, body: Any = None
) -> tuple[int, Any]:
    raw = json.dumps(body).encode() if body is not None else None
    parameters = {"connectionId": path.split("/")[2]} if "{connectionId}" in route else None
    event = http_api_event(
        method,
        path,
        route_key=f"{method} {route}",
        headers=bearer(secrets_),
        body=raw,
        path_parameters=parameters,
        jwt_claims={"sub": CUSTOMER},
    )
    response = api.invoke(event)
    return response["statusCode"], json.loads(response["body"])


def test_the_repair_api_logs_no_token_widget_url_key_jwt_or_provider_detail(
    aws: LocalResources, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    found = Secrets()
    provider_secret = found.add("provider access token", f"access-sandbox-{secrets.token_hex(12)}")
    found.add("Meld API key", API_KEY)
    meld = TokenIssuingMeld(found, provider_secret)
    stand_in = MeldStandIn()
    stand_in.respond("POST", "/bank-linking/connect/repair", meld.session)
    stand_in.respond("POST", "/bank-linking/connect/start", meld.session)
    api = install_repair_api(aws.table_name, monkeypatch, stand_in)
    api.store.save_connection(connection(), expected_version=None)
    repair = ("POST", f"/connections/{CONNECTION_ID}/repair", "/connections/{connectionId}/repair")

    # Every route, successes first
    answers = [
        api_request(api, found, "GET", "/connections", "/connections")[0],
        api_request(api, found, "GET", f"/connections/{CONNECTION_ID}", "/connections/{connectionId}")[0],
        api_request(api, found, *repair)[0],
        api_request(api, found, "POST", "/connections", "/connections", {"institutionId": "Ntj3AwgdridJc2rtfeheku"})[0],
        api_request(api, found, "PUT", "/me/notifications", "/me/notifications", {"email": "ada@example.com"})[0],
        api_request(api, found, "GET", "/me/notifications", "/me/notifications")[0],
    ]
    assert answers == [200, 200, 200, 201, 200, 200]

    # Then every way a repair fails at Meld, each carrying a token where one could leak from
    token_in_bad_answer = found.add("connect token in an unusable answer", fresh_token())
    failures: dict[str, Callable[[httpx.Request], httpx.Response]] = {
        "wrong shape": lambda r: meld_json(
            200, {"id": CONNECTION_ID, "connectToken": token_in_bad_answer, "widgetUrl": 7}
        ),
        "cut-off JSON": lambda r: httpx.Response(
            200,
            content=f'{{"connectToken": "{token_in_bad_answer}", "widgetU'.encode(),
            headers={"content-type": "application/json"},
        ),
        "HTML": lambda r: httpx.Response(
            200, content=token_in_bad_answer.encode(), headers={"content-type": "text/html"}
        ),
        "key refused": lambda r: meld_error(401, "UNAUTHORIZED"),
        "unavailable": lambda r: meld_error(503),
        "rate limited": lambda r: meld_error(429, headers={"Retry-After": "1"}),
        "conflict": lambda r: meld_error(409, "CONFLICT"),
    }
    statuses = {}
    for name, responder in failures.items():
        stand_in.respond("POST", "/bank-linking/connect/repair", responder)
        statuses[name] = api_request(api, found, *repair)[0]
    assert statuses == {
        "wrong shape": 502,
        "cut-off JSON": 502,
        "HTML": 502,
        "key refused": 502,
        "unavailable": 503,
        "rate limited": 503,
        "conflict": 409,
    }
    # Then every way a caller is refused, each carrying what must not be logged: contact details, tokens
    stand_in.respond("POST", "/bank-linking/connect/repair", meld.session)
    api.store.save_connection(connection("someone-elses", customer="someone-else"), expected_version=None)
    api.store.save_connection(connection("deleted-one", status="DELETED", reason=None), expected_version=None)
    email = found.add("email address", f"ada.{secrets.token_hex(6)}@example.com")
    phone = found.add("phone number", f"+1415555{secrets.randbelow(10_000):04d}")
    pasted_token = found.add("token pasted into a body", fresh_token())
    stand_in.respond("POST", "/bank-linking/connect/start", meld_error(400, "INVALID_INSTITUTION"))
    refusals = {
        "not yours": api_request(api, found, "POST", "/connections/someone-elses/repair", repair[2])[0],
        "not repairable": api_request(api, found, "POST", "/connections/deleted-one/repair", repair[2])[0],
        "bad contact": api_request(
            api, found, "PUT", "/me/notifications", "/me/notifications", {"email": email + "@", "phone": phone + "x"}
        )[0],
        "unknown field": api_request(
            api,
            found,
            "POST",
            "/connections",
            "/connections",
            {"institutionId": "Ntj3AwgdridJc2rtfeheku", "t": pasted_token},
        )[0],
        "start refused": api_request(
            api, found, "POST", "/connections", "/connections", {"institutionId": "Ntj3AwgdridJc2rtfeheku"}
        )[0],
        "replace another's": api_request(
            api, found, "POST", "/connections", "/connections", {"replacesConnectionId": "someone-elses"}
        )[0],
    }
    assert refusals == {
        "not yours": 404,
        "not repairable": 409,
        "bad contact": 422,
        "unknown field": 422,
        "start refused": 422,
        "replace another's": 404,
    }
    stand_in.respond("POST", "/bank-linking/connect/start", meld.session)
    replacement = {"replacesConnectionId": CONNECTION_ID}
    assert api_request(api, found, "POST", "/connections", "/connections", replacement)[0] == 201
    no_identity = http_api_event("GET", "/connections", route_key="GET /connections", headers=bearer(found))
    assert api.invoke(no_identity)["statusCode"] == 401

    # And an unexpected failure (DynamoDB refusing the read), logged with its traceback
    dynamodb = api.service._connections._client  # type: ignore[attr-defined]
    dynamodb.meta.events.register(
        "before-call.dynamodb.GetItem",
        lambda **_: (SimpleNamespace(status_code=500, headers={}), {"Error": {"Code": "InternalServerError"}}),
    )
    assert api_request(api, found, *repair)[0] == 500

    logged = logs()
    assert "Repair token issued" in logged  # the logs were captured at all
    assert "Repair refused" in logged
    assert "Meld refused to start a connection" in logged
    assert "Request without the customer claim" in logged
    assert "Meld configuration error" in logged
    assert "Repair API request failed" in logged
    assert found.leaks(logged) == []
    assert "serviceProviderDetails" not in logged
    assert "PLAID" not in logged


def test_webhook_ingest_logs_no_secret_signature_or_provider_detail_whatever_happens(
    webhook_env: LocalResources,
    downstream: Callable[[], list[dict[str, Any]]],
    logs: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from connection_repair.wiring.webhook import webhook_ingestor

    found = Secrets()
    found.add("webhook secret", LOCAL_WEBHOOK_SECRET)
    found.add("Meld API key", API_KEY)
    provider_secret = found.add("provider access token", f"access-sandbox-{secrets.token_hex(12)}")
    answers: list[str] = []

    def deliver(body: dict[str, Any] | bytes, *, secret: str = LOCAL_WEBHOOK_SECRET) -> int:
        delivery = signed_delivery(body, now=datetime.now(UTC), secret=secret)
        found.add("signature", delivery.headers["meld-signature"])
        event = http_api_event(
            "POST",
            "/webhooks/meld",
            route_key="POST /webhooks/meld",
            headers=dict(delivery.headers),
            body=delivery.raw_body,
        )
        response = webhook_app.lambda_handler(event, LambdaContext())
        answers.append(response["body"])
        return int(response["statusCode"])

    def broken(event_id: str, minute: int, status: str = "RECONNECT_REQUIRED") -> dict[str, Any]:
        body = status_change(event_id, f"2026-11-25T11:{minute:02d}:00Z", status, "LOGIN_REQUIRED")
        body["payload"]["serviceProviderDetails"] = {"serviceProvider": "PLAID", "accessToken": provider_secret}
        return body

    def fail_once(client: Any, operation: str, reply: dict[str, Any], status: int = 400) -> None:
        calls: list[int] = []

        def hook(**_: Any) -> Any:
            calls.append(1)
            return (SimpleNamespace(status_code=status, headers={}), reply) if len(calls) == 1 else None

        client.meta.events.register(f"before-call.{operation}", hook)

    ingestor = webhook_ingestor()
    outcomes = [deliver(broken("evt-1", 1)), deliver(broken("evt-1", 1))]  # accepted, duplicate
    outcomes.append(deliver(broken("evt-2", 2), secret="not-the-secret-" + secrets.token_hex(8)))  # 401
    outcomes.append(deliver(json.dumps({"eventId": provider_secret}).encode()))  # 400, the body quoted nowhere
    outcomes.append(deliver(envelope("TEST", "evt-3", "2026-11-25T11:03:00Z", {"secret": provider_secret})))
    fail_once(
        ingestor._events._store._client, "dynamodb.TransactWriteItems", {"Error": {"Code": "ThrottlingException"}}
    )  # type: ignore[attr-defined]
    outcomes.append(deliver(broken("evt-4", 4, "ACTIVE")))  # 503 STORE_BUSY
    fail_once(
        ingestor._events._store._client, "dynamodb.TransactWriteItems", {"Error": {"Code": "InternalServerError"}}
    )  # type: ignore[attr-defined]
    outcomes.append(deliver(broken("evt-4", 4, "ACTIVE")))  # 500
    fail_once(
        ingestor._events._outbox._publisher._client, "events.PutEvents", {"Error": {"Code": "ThrottlingException"}}
    )  # type: ignore[attr-defined]
    outcomes.append(deliver(broken("evt-5", 5, "ACTIVE")))  # 503, its outbox left for the retry
    # Meld's retry while the first delivery still holds the outbox's lease: 503 IN_PROGRESS
    monkeypatch.setattr(outbox, "HOLDER_WAIT_SECONDS", 0.05)
    outcomes.append(deliver(broken("evt-5", 5, "ACTIVE")))
    outcomes.append(deliver(broken("evt-0", 0)))  # older than what the connection reflects: stale

    # A connection never seen, without externalCustomerId: its owner is looked up at Meld, whose answer carries
    # provider details and whose request carries the API key
    def meld_answers(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"].endswith(API_KEY)
        connection_id = request.url.path.rsplit("/", 1)[-1]
        if connection_id == "conn-meld-down":
            return meld_error(503)
        return meld_json(
            200,
            {
                "id": connection_id,
                "externalCustomerId": "customer-1",
                "status": "RECONNECT_REQUIRED",
                "serviceProviderDetails": {"serviceProvider": "PLAID", "accessToken": provider_secret},
            },
        )

    client = MeldClient(
        "https://meld.invalid", lambda: API_KEY, transport=httpx.MockTransport(meld_answers), sleep=lambda _: None
    )
    monkeypatch.setattr(ingestor._events, "_directory", lambda: MeldConnectionDirectory(client))
    for connection_id in ("conn-unknown", "conn-meld-down"):
        unattributed = broken(f"evt-{connection_id}", 7)
        unattributed["payload"] |= {"connectionId": connection_id}
        del unattributed["payload"]["externalCustomerId"]
        outcomes.append(deliver(unattributed))
    assert outcomes == [200, 200, 401, 400, 200, 503, 500, 503, 503, 200, 200, 500]
    assert [json.loads(body)["status"] for body in answers[-3:-1]] == ["stale", "accepted"]

    logged = logs()
    assert "Webhook ingested" in logged
    assert "Webhook failed" in logged
    assert "still publishing" in logged
    assert '"outcome":"stale"' in logged.replace(" ", "")
    assert found.leaks(logged) == []
    assert "serviceProviderDetails" not in logged
    assert "PLAID" not in logged


def test_notifier_and_replacer_log_no_secret(
    webhook_env: LocalResources, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    from connection_repair.adapters.eventbridge import EventBridgePublisher
    from connection_repair.notify.service import RATE_RETRY
    from connection_repair.replacement.service import ConnectionReplacer

    found = Secrets()
    found.add("Meld API key", API_KEY)
    # The notifier: a send that SES throttles, then the retry, then the sweep, through the handler
    rig = build_notifier(webhook_env.table_name, Clock(T0 + timedelta(minutes=6)))
    monkeypatch.setattr(notifier_app, "notifier", lambda: rig.notifier)
    rig.preferences(email="ada@example.com", phone="+14155550123", channels=(Channel.EMAIL, Channel.SMS))
    notice = attention(rig.connection(), at=T0)
    event = {
        "version": "0",
        "id": "9c3d7d0e-0000-4000-8000-000000000001",
        "detail-type": "Connection Needs Attention",
        "source": "connection-repair",
        "account": "123456789012",
        "time": "2026-11-25T11:30:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": json.loads(event_detail(notice)),
    }
    for channel, operation, code in (
        (Channel.EMAIL, "sesv2.SendEmail", "TooManyRequestsException"),
        (Channel.SMS, "sns.Publish", "Throttled"),
    ):
        client = rig.channels[channel]._client  # type: ignore[attr-defined]
        client.meta.events.register(
            f"before-call.{operation}",
            lambda code=code, **_: (SimpleNamespace(status_code=400, headers={}), {"Error": {"Code": code}}),
            unique_id=f"throttle-{operation}",
        )
    # Throttled on every channel: deferred (the record is done), tried again once due
    assert notifier_app.lambda_handler(queued(event), LambdaContext())["batchItemFailures"] == []
    for channel, operation in ((Channel.EMAIL, "sesv2.SendEmail"), (Channel.SMS, "sns.Publish")):
        rig.channels[channel]._client.meta.events.unregister(  # type: ignore[attr-defined]
            f"before-call.{operation}", unique_id=f"throttle-{operation}"
        )
    rig.clock.at(rig.clock.now + RATE_RETRY)
    notifier_app.lambda_handler(queued(event), LambdaContext())
    sweep = dict(event, **{"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})
    notifier_app.lambda_handler(sweep, LambdaContext())
    [email] = sent_emails()

    # The replacer: retires a replaced connection (Meld's DELETE), once fine and once refused
    stand_in = MeldStandIn()
    publisher = EventBridgePublisher(boto3.client("events"), webhook_env.event_bus_name, "connection-repair")
    replacer = ConnectionReplacer(
        store=connection_store_for(webhook_env.table_name),
        publisher=publisher,
        meld=meld_gateway(stand_in),
        directory=meld_directory(stand_in),
    )
    monkeypatch.setattr(replacer_app, "connection_replacer", lambda: replacer)
    store_for(webhook_env.table_name).save_connection(connection("old-connection"), expected_version=None)
    replaced = {
        "connectionId": "new-connection",
        "replacedConnectionId": "old-connection",
        "externalCustomerId": CUSTOMER,
        "eventTime": "2026-11-25T12:00:00Z",
    }
    replacer_event = dict(event, **{"detail-type": "Connection Replaced", "detail": replaced})
    stand_in.respond("DELETE", "/bank-linking/connections/old-connection", meld_error(401, "UNAUTHORIZED"))
    with pytest.raises(MeldFailure):  # Lambda retries the event
        replacer_app.lambda_handler(replacer_event, LambdaContext())
    stand_in.respond("DELETE", "/bank-linking/connections/old-connection", httpx.Response(204))
    assert replacer_app.lambda_handler(replacer_event, LambdaContext())["outcome"]

    logged = logs()
    assert "Notification sent" in logged
    assert "Channel refused the message" in logged
    assert "Replacement handled" in logged
    assert found.leaks(logged) == []
    assert "ada@example.com" in email.destinations["ToAddresses"]
