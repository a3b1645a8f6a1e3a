"""The Meld simulator over real HTTP: Meld's endpoints, signed webhooks with retries, control endpoints and faults."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from connection_repair.ingestion.signature import SignatureError, verify
from local.meld_simulator import MeldSimulator, SimulatorConfig
from local.meld_simulator.client import SimulatorClient

API_KEY = "test-meld-key"
SECRET = "test-webhook-secret"
COMPLETED = "BANK_LINKING_CONNECTION_COMPLETED"
STATUS_CHANGE = "BANK_LINKING_CONNECTION_STATUS_CHANGE"
DELETED = "BANK_LINKING_CONNECTION_DELETED"
ERROR_KEYS = {"code", "message", "errors", "requestId", "timestamp"}
ENVELOPE_KEYS = {"eventType", "eventId", "timestamp", "accountId", "profileId", "version", "payload"}
MELD_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class FakeClock:
    """Real time plus an offset the test can advance, so timestamps still move but tokens can be aged."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_error: str | None

    @property
    def envelope(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


class Receiver:
    """A webhook endpoint that verifies Meld's signature and answers with scripted statuses (then 200)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.received: list[Received] = []
        # The public URL Meld is told to sign, when it is not this receiver's own (a tunnel in front of it).
        self.signed_url: str | None = None
        self.script: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                try:
                    url = receiver.signed_url or receiver.url
                    verify(headers, body, url=url, secrets=[SECRET], tolerance_seconds=300, now=clock())
                    error = None
                except SignatureError as exc:
                    error = exc.reason.value
                with receiver._lock:
                    receiver.received.append(Received(headers, body, error))
                    status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/meld"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            envelopes = [item.envelope for item in self.received]
        return [envelope for envelope in envelopes if event_type is None or envelope["eventType"] == event_type]

    def wait_for(self, count: int, event_type: str | None = None, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(found := self.events(event_type)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} {event_type or 'webhooks'}, got {found}")
            time.sleep(0.01)
        return found


@dataclass
class Stack:
    sim: MeldSimulator
    receiver: Receiver
    clock: FakeClock
    meld: httpx.Client
    control: SimulatorClient

    def create(self, status: str = "ACTIVE", reason: str | None = None, **extra: Any) -> dict[str, Any]:
        body = {"externalCustomerId": "customer-1", "status": status, "statusReason": reason, **extra}
        response = self.control.http.post("/_sim/connections", json=body)
        assert response.status_code == 201, response.text
        connection: dict[str, Any] = response.json()
        return connection

    def settle(self) -> None:
        """Wait until every webhook so far is delivered, then forget them."""
        self.control.wait_until_idle()
        self.receiver.received.clear()
        self.control.clear_deliveries()


@pytest.fixture
def stack() -> Iterator[Stack]:
    clock = FakeClock()
    receiver = Receiver(clock)
    config = SimulatorConfig(
        api_key=API_KEY,
        webhook_secret=SECRET,
        webhook_url=receiver.url,
        port=0,
        retry_delays=(0.05, 0.1, 0.2),
        fault_timeout_seconds=0.6,
        clock=clock,
    )
    sim = MeldSimulator(config).start()
    meld = httpx.Client(
        base_url=sim.base_url, headers={"Authorization": f"BASIC {API_KEY}"}, timeout=5, trust_env=False
    )
    control = SimulatorClient(sim.base_url)
    try:
        yield Stack(sim, receiver, clock, meld, control)
    finally:
        meld.close()
        control.close()
        sim.stop()
        receiver.stop()


def claims_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return value


def assert_meld_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS
    assert isinstance(body["errors"], list)
    return body


def test_binds_loopback_only(stack: Stack) -> None:
    assert stack.sim.base_url.startswith("http://127.0.0.1:")
    assert stack.control.health()["status"] == "ok"


def test_meld_endpoints_require_the_api_key(stack: Stack) -> None:
    with httpx.Client(base_url=stack.sim.base_url, trust_env=False) as anonymous:
        missing = anonymous.get("/bank-linking/connections", headers={"Meld-Version": "2023-12-19"})
        wrong = anonymous.post(
            "/bank-linking/connect/start",
            json={"externalCustomerId": "c"},
            headers={"Authorization": "BASIC nope"},
        )
    assert assert_meld_error(missing, 401)["code"] == "UNAUTHORIZED"
    assert missing.headers["Meld-Version"] == "2023-12-19"
    assert_meld_error(wrong, 401)
    ok = stack.meld.get("/bank-linking/connections", headers={"Meld-Version": "2023-12-19"})
    assert ok.status_code == 200
    assert ok.headers["Meld-Version"] == "2023-12-19"


def test_start_creates_an_in_progress_connection_with_a_token(stack: Stack) -> None:
    started = stack.meld.post("/bank-linking/connect/start", json={"externalCustomerId": "customer-1"}).json()
    assert set(started) == {"id", "connectToken", "customerId", "externalCustomerId", "widgetUrl"}
    assert started["widgetUrl"] == f"{stack.sim.base_url}/widget?connectToken={started['connectToken']}"
    claims = claims_of(started["connectToken"])
    assert claims["purpose"] == "start"
    assert (claims["connection"], claims["customer"]) == (started["id"], started["customerId"])
    assert claims["exp"] - claims["iat"] == 3 * 3600

    connection = stack.meld.get(f"/bank-linking/connections/{started['id']}").json()
    assert connection["status"] == "IN_PROGRESS"
    assert connection["serviceProviderDetails"]["serviceProvider"] == "SIMULATED"
    assert connection["duplicateConnectionIds"] == []
    assert connection["activeDuplicateConnectionId"] is None

    again = stack.meld.post("/bank-linking/connect/start", json={"externalCustomerId": "customer-1"}).json()
    assert again["customerId"] == started["customerId"]  # one Meld customer per externalCustomerId
    assert_meld_error(stack.meld.post("/bank-linking/connect/start", json={}), 400)
    assert_meld_error(stack.meld.get("/bank-linking/connections/unknown"), 404)


def test_list_filters_and_pages(stack: Stack) -> None:
    first = stack.create("ACTIVE", institutionId="ins_chase")
    second = stack.create("RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    other = stack.create("ACTIVE", externalCustomerId="someone-else", institutionId="ins_chase")

    def listing(**params: Any) -> dict[str, Any]:
        response = stack.meld.get("/bank-linking/connections", params=params)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def ids(page: dict[str, Any]) -> list[str]:
        return [c["id"] for c in page["connections"]]

    page = listing(externalCustomerId="customer-1", statuses="ACTIVE,RECONNECT_REQUIRED")
    assert ids(page) == [first["id"], second["id"]]
    assert (page["count"], page["remaining"]) == (2, 0)
    assert ids(listing(statuses="RECONNECT_REQUIRED")) == [second["id"]]
    assert ids(listing(institutionId="ins_chase")) == [first["id"], other["id"]]
    assert ids(listing(customerId=other["customerId"])) == [other["id"]]
    # Pages by each connection's key, forwards and backwards
    keys = [c["key"] for c in listing()["connections"]]
    assert keys == sorted(keys)
    assert len(set(keys)) == 3
    one = listing(limit=1)
    assert (ids(one), one["count"], one["remaining"]) == ([first["id"]], 1, 2)
    after = listing(limit=1, after=one["connections"][0]["key"])
    assert (ids(after), after["remaining"]) == ([second["id"]], 1)
    before = listing(limit=1, before=keys[2])
    assert (ids(before), before["remaining"]) == ([second["id"]], 1)
    assert ids(listing(before=keys[1])) == [first["id"]]
    both = stack.meld.get("/bank-linking/connections", params={"after": keys[0], "before": keys[2]})
    assert_meld_error(both, 400)


def test_created_connection_sends_signed_completed_and_status_change(stack: Stack) -> None:
    connection = stack.create("RECONNECT_REQUIRED", "LOGIN_REQUIRED", institutionName="Chase")
    assert connection["status"] == "RECONNECT_REQUIRED"
    assert connection["institutionName"] == "Chase"
    stack.receiver.wait_for(2)

    assert all(item.signature_error is None for item in stack.receiver.received)
    for item in stack.receiver.received:
        assert item.headers["content-type"] == "application/json"
        assert MELD_TIMESTAMP.match(item.headers["meld-signature-timestamp"])
        assert "meld-retry-count" not in item.headers
    completed = stack.receiver.events(COMPLETED)[0]
    change = stack.receiver.events(STATUS_CHANGE)[0]
    for envelope in (completed, change):
        assert set(envelope) == ENVELOPE_KEYS
        assert MELD_TIMESTAMP.match(envelope["timestamp"])
        payload = envelope["payload"]
        assert payload["connectionId"] == connection["id"]
        assert payload["customerId"] == connection["customerId"]
        assert payload["externalCustomerId"] == "customer-1"
        assert payload["institutionName"] == "Chase"
        assert payload["institutionId"] == connection["institutionId"]
        assert payload["serviceProviderDetails"]["serviceProvider"] == "SIMULATED"
        assert payload["requestId"]
    assert completed["eventId"] != change["eventId"]
    assert change["payload"]["oldStatus"] == "IN_PROGRESS"
    assert change["payload"]["newStatus"] == "RECONNECT_REQUIRED"
    assert change["payload"]["statusReason"] == "LOGIN_REQUIRED"


def test_status_change_sends_old_and_new_status(stack: Stack) -> None:
    connection = stack.create("ACTIVE")
    stack.settle()
    response = stack.control.http.post(
        f"/_sim/connections/{connection['id']}/status", json={"status": "RECONNECT_REQUIRED", "statusReason": "OTHER"}
    )
    assert response.status_code == 200
    (change,) = stack.receiver.wait_for(1, STATUS_CHANGE)
    assert change["payload"]["oldStatus"] == "ACTIVE"
    assert change["payload"]["newStatus"] == "RECONNECT_REQUIRED"
    assert change["payload"]["statusReason"] == "OTHER"
    assert stack.receiver.received[0].signature_error is None
    fetched = stack.meld.get(f"/bank-linking/connections/{connection['id']}").json()
    assert (fetched["status"], fetched["statusReason"]) == ("RECONNECT_REQUIRED", "OTHER")
    missing = stack.control.http.post("/_sim/connections/unknown/status", json={"status": "ACTIVE"})
    assert_meld_error(missing, 404)


def test_repair_issues_a_token_and_keeps_the_status(stack: Stack) -> None:
    connection = stack.create("RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    repair = stack.meld.post("/bank-linking/connect/repair", json={"connectionId": connection["id"]})
    assert repair.status_code == 200
    body = repair.json()
    assert set(body) == {"id", "connectToken", "institutionId", "widgetUrl"}
    assert body["id"] == connection["id"]
    assert body["institutionId"] == connection["institutionId"]
    assert claims_of(body["connectToken"])["purpose"] == "repair"
    assert body["widgetUrl"].startswith(f"{stack.sim.base_url}/widget?connectToken=")
    fetched = stack.meld.get(f"/bank-linking/connections/{connection['id']}").json()
    assert (fetched["status"], fetched["statusReason"]) == ("RECONNECT_REQUIRED", "LOGIN_REQUIRED")


@pytest.mark.parametrize("status", ["DELETED", "EXPIRED", "IN_PROGRESS"])
def test_repair_refuses_terminal_and_unfinished_connections(stack: Stack, status: str) -> None:
    connection = stack.create(status)
    response = stack.meld.post("/bank-linking/connect/repair", json={"connectionId": connection["id"]})
    assert assert_meld_error(response, 409)["code"] == "CONFLICT"


def test_repair_of_an_unknown_connection_is_404(stack: Stack) -> None:
    response = stack.meld.post("/bank-linking/connect/repair", json={"connectionId": "WQ4mBt3BEX2cmhCvSPyfTu"})
    assert_meld_error(response, 404)
    assert_meld_error(stack.meld.post("/bank-linking/connect/repair", json={}), 400)


def test_completing_a_repair_makes_the_connection_active_once(stack: Stack) -> None:
    connection = stack.create("RECONNECT_REQUIRED", "TOKEN_EXPIRED")
    token = stack.meld.post("/bank-linking/connect/repair", json={"connectionId": connection["id"]}).json()[
        "connectToken"
    ]
    stack.settle()
    done = stack.control.http.post("/_sim/widget/complete", json={"connectToken": token})
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["statusReason"]) == ("ACTIVE", None)
    stack.receiver.wait_for(2)
    assert len(stack.receiver.events(COMPLETED)) == 1
    (change,) = stack.receiver.events(STATUS_CHANGE)
    assert change["payload"]["oldStatus"] == "RECONNECT_REQUIRED"
    assert change["payload"]["newStatus"] == "ACTIVE"
    assert change["payload"]["statusReason"] is None

    used = stack.control.http.post("/_sim/widget/complete", json={"connectToken": token})
    assert assert_meld_error(used, 400)["code"] == "CONNECT_TOKEN_ALREADY_USED"
    unknown = stack.control.http.post("/_sim/widget/complete", json={"connectToken": "a.b.c"})
    assert assert_meld_error(unknown, 400)["code"] == "INVALID_CONNECT_TOKEN"


def test_a_failed_repair_keeps_the_status_with_a_new_reason(stack: Stack) -> None:
    connection = stack.create("RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    token = stack.meld.post("/bank-linking/connect/repair", json={"connectionId": connection["id"]}).json()[
        "connectToken"
    ]
    stack.settle()
    failed = stack.control.complete_widget(token, outcome="FAIL")
    assert failed["status"] == "RECONNECT_REQUIRED"
    assert failed["statusReason"] not in (None, "LOGIN_REQUIRED")
    stack.receiver.wait_for(2)
    (change,) = stack.receiver.events(STATUS_CHANGE)
    assert change["payload"]["oldStatus"] == change["payload"]["newStatus"] == "RECONNECT_REQUIRED"
    assert change["payload"]["statusReason"] == failed["statusReason"]


def test_completing_a_start_token_activates_the_connection(stack: Stack) -> None:
    started = stack.meld.post(
        "/bank-linking/connect/start", json={"externalCustomerId": "customer-1", "institutionId": "unknown-bank"}
    ).json()
    done = stack.control.complete_widget(started["connectToken"])
    assert done["status"] == "ACTIVE"
    assert done["successfullyAggregatedAt"] is not None
    (change,) = stack.receiver.wait_for(1, STATUS_CHANGE)
    assert (change["payload"]["oldStatus"], change["payload"]["newStatus"]) == ("IN_PROGRESS", "ACTIVE")
    stack.receiver.wait_for(1, COMPLETED)


def test_an_expired_token_is_refused(stack: Stack) -> None:
    connection = stack.create("RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    token = stack.meld.post("/bank-linking/connect/repair", json={"connectionId": connection["id"]}).json()[
        "connectToken"
    ]
    stack.clock.advance(timedelta(hours=3, seconds=1))
    expired = stack.control.http.post("/_sim/widget/complete", json={"connectToken": token})
    assert assert_meld_error(expired, 400)["code"] == "CONNECT_TOKEN_EXPIRED"
    page = stack.control.http.get("/widget", params={"connectToken": token})
    assert page.status_code == 400
    assert "expired" in page.text


def test_widget_page_names_the_institution(stack: Stack) -> None:
    connection = stack.create("RECONNECT_REQUIRED", "LOGIN_REQUIRED", institutionName="Wells <Fargo>")
    widget_url = stack.meld.post("/bank-linking/connect/repair", json={"connectionId": connection["id"]}).json()[
        "widgetUrl"
    ]
    with httpx.Client(trust_env=False) as browser:
        page = browser.get(widget_url)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Log in to Wells &lt;Fargo&gt;" in page.text  # escaped, never raw
    assert "/_sim/widget/complete" in page.text
    assert stack.control.http.get("/widget", params={"connectToken": "nonsense"}).status_code == 400


def test_the_widget_can_be_framed_only_by_the_configured_origins(stack: Stack) -> None:
    connection = stack.create("RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    repair = stack.meld.post("/bank-linking/connect/repair", json={"connectionId": connection["id"]}).json()
    page = httpx.get(repair["widgetUrl"], trust_env=False)
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert "const ORIGINS = [];" in page.text  # no page hears its events

    app = "http://127.0.0.1:3002"
    framed = MeldSimulator(SimulatorConfig(port=0, widget_origins=(app, "https://app.example"))).start()
    try:
        token = framed.backend.start({"externalCustomerId": "customer-1"})["connectToken"]
        page = httpx.get(f"{framed.base_url}/widget", params={"connectToken": token}, trust_env=False)
        refused = httpx.get(f"{framed.base_url}/widget", params={"connectToken": "a.b.c"}, trust_env=False)
    finally:
        framed.stop()
    assert page.headers["content-security-policy"] == f"frame-ancestors {app} https://app.example"
    assert f'const ORIGINS = ["{app}", "https://app.example"];' in page.text
    # Meld's events, posted only to those origins (their behaviour in a browser: tests/e2e/browser).
    assert 'emit("init", {});' in page.text
    assert 'emit("connect_complete"' in page.text
    # A link the widget refuses can be shown in the app's frame, and tells the app why.
    assert refused.status_code == 400
    assert refused.headers["content-security-policy"] == f"frame-ancestors {app} https://app.example"
    assert 'emit("error", ERROR);' in refused.text


def test_failed_deliveries_are_retried_with_retry_headers(stack: Stack) -> None:
    connection = stack.create("ACTIVE")
    stack.settle()
    stack.receiver.script = [500, 500]
    stack.control.set_status(connection["id"], "DEGRADED", "INSTITUTION_CURRENTLY_UNAVAILABLE")
    attempts = stack.control.wait_for_deliveries(lambda found: any(a["status"] == 200 for a in found))
    assert [(a["attempt"], a["retryCount"], a["status"]) for a in attempts] == [(1, 0, 500), (2, 1, 500), (3, 2, 200)]
    assert attempts[0]["error"] == "HTTP_500"
    assert len({a["eventId"] for a in attempts}) == 1

    received = stack.receiver.received
    assert len(received) == 3
    assert "meld-retry-count" not in received[0].headers
    assert [r.headers["meld-retry-count"] for r in received[1:]] == ["1", "2"]
    assert received[1].headers["meld-retry-reason"] == "HTTP_500"
    assert all(r.signature_error is None for r in received)
    assert received[0].body == received[2].body  # same event, re-signed, never re-serialised differently
    assert len({r.headers["meld-signature-timestamp"] for r in received}) == 3


def test_undeliverable_webhooks_give_up_after_the_schedule(stack: Stack) -> None:
    connection = stack.create("ACTIVE")
    stack.settle()
    stack.receiver.script = [503] * 10
    stack.control.set_status(connection["id"], "RECONNECT_REQUIRED", "OTHER")
    stack.control.wait_until_idle()
    attempts = stack.control.deliveries()
    assert [a["status"] for a in attempts] == [503] * 4  # 1 + len(retry_delays)


def test_faults_fail_the_next_calls_then_clear(stack: Stack) -> None:
    connection = stack.create("RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    repair_body = {"connectionId": connection["id"]}

    stack.control.add_fault("repair", "500", count=2)
    assert assert_meld_error(stack.meld.post("/bank-linking/connect/repair", json=repair_body), 500)
    assert_meld_error(stack.meld.post("/bank-linking/connect/repair", json=repair_body), 500)
    assert stack.meld.post("/bank-linking/connect/repair", json=repair_body).status_code == 200

    stack.control.add_fault("repair", "429", retry_after=7)
    limited = stack.meld.post("/bank-linking/connect/repair", json=repair_body)
    assert_meld_error(limited, 429)
    assert limited.headers["Retry-After"] == "7"

    stack.control.add_fault("get", "invalid_json")
    broken = stack.meld.get(f"/bank-linking/connections/{connection['id']}")
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        broken.json()

    stack.control.add_fault("start", "html")
    html = stack.meld.post("/bank-linking/connect/start", json={"externalCustomerId": "customer-1"})
    assert html.status_code == 502
    assert html.headers["content-type"].startswith("text/html")

    stack.control.add_fault("delete", "409")
    assert_meld_error(stack.meld.delete(f"/bank-linking/connections/{connection['id']}"), 409)
    assert stack.meld.get(f"/bank-linking/connections/{connection['id']}").json()["status"] == "RECONNECT_REQUIRED"

    stack.control.add_fault("list", "timeout")
    with pytest.raises(httpx.ReadTimeout):
        stack.meld.get("/bank-linking/connections", timeout=0.2)
    assert stack.meld.get("/bank-linking/connections").status_code == 200

    stack.control.add_fault("get", "500", count=5)
    stack.control.clear_faults()
    assert stack.meld.get(f"/bank-linking/connections/{connection['id']}").status_code == 200
    bad = stack.control.http.post("/_sim/faults", json={"endpoint": "refresh", "mode": "500"})
    assert_meld_error(bad, 400)


def test_a_drop_fault_loses_the_next_webhooks_without_an_attempt_or_a_retry(stack: Stack) -> None:
    connection = stack.create("ACTIVE")
    stack.settle()
    stack.control.add_fault("webhooks", "drop", count=2)
    assert stack.control.http.get("/_sim/faults").json() == [
        {"endpoint": "webhooks", "mode": "drop", "count": 2, "retryAfter": None}
    ]

    stack.control.set_status(connection["id"], "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    stack.control.set_status(connection["id"], "ACTIVE", None)
    stack.control.set_status(connection["id"], "DEGRADED", "INSTITUTION_CURRENTLY_UNAVAILABLE")
    stack.control.wait_for_deliveries(lambda found: any(a["status"] == 200 for a in found))
    stack.control.wait_until_idle()

    attempts = stack.control.deliveries()
    assert [(a["dropped"], a["attempt"], a["status"], a["error"]) for a in attempts] == [
        (True, 0, None, "DROPPED"),
        (True, 0, None, "DROPPED"),
        (False, 1, 200, None),
    ]
    [received] = stack.receiver.received
    assert json.loads(received.body)["payload"]["newStatus"] == "DEGRADED"
    # The lost events are still Meld's events (its state moved), and the fault is used up
    sent = [event["payload"].get("newStatus") for event in stack.control.events()[-3:]]
    assert sent == ["RECONNECT_REQUIRED", "ACTIVE", "DEGRADED"]
    assert stack.control.http.get("/_sim/faults").json() == []
    assert stack.meld.get(f"/bank-linking/connections/{connection['id']}").json()["status"] == "DEGRADED"


@pytest.mark.parametrize(
    "body",
    [{"endpoint": "webhooks", "mode": "500"}, {"endpoint": "repair", "mode": "drop"}],
    ids=["webhooks-only-drop", "drop-only-webhooks"],
)
def test_drop_is_the_webhooks_mode_and_only_theirs(stack: Stack, body: dict[str, Any]) -> None:
    refused = stack.control.http.post("/_sim/faults", json=body)
    assert_meld_error(refused, 400)
    assert "drop" in refused.json()["message"]
    assert stack.control.http.get("/_sim/faults").json() == []


def test_delete_sends_a_deleted_webhook_and_refuses_a_second_delete(stack: Stack) -> None:
    connection = stack.create("ACTIVE")
    stack.settle()
    deleted = stack.meld.delete(f"/bank-linking/connections/{connection['id']}")
    assert deleted.status_code in (200, 204)
    (event,) = stack.receiver.wait_for(1, DELETED)
    assert event["payload"]["connectionId"] == connection["id"]
    assert stack.receiver.received[0].signature_error is None
    assert stack.meld.get(f"/bank-linking/connections/{connection['id']}").json()["status"] == "DELETED"
    assert_meld_error(stack.meld.delete(f"/bank-linking/connections/{connection['id']}"), 409)
    assert_meld_error(stack.meld.delete("/bank-linking/connections/unknown"), 404)


def test_reset_forgets_everything(stack: Stack) -> None:
    connection = stack.create("ACTIVE")
    stack.control.wait_until_idle()
    stack.control.reset()
    assert_meld_error(stack.meld.get(f"/bank-linking/connections/{connection['id']}"), 404)
    assert stack.control.deliveries() == []
    assert stack.control.events() == []


@contextmanager
def delivering_to_a_receiver(
    signed_url: str | None = None, **options: Any
) -> Iterator[tuple[Receiver, SimulatorClient]]:
    """A simulator with ``options`` (SimulatorConfig's) delivering to a receiver that verifies every signature."""
    clock = FakeClock()
    receiver = Receiver(clock)
    receiver.signed_url = signed_url
    config = SimulatorConfig(
        api_key=API_KEY,
        webhook_secret=SECRET,
        webhook_url=receiver.url,
        signed_url=signed_url,
        port=0,
        clock=clock,
        **options,
    )
    sim = MeldSimulator(config).start()
    control = SimulatorClient(sim.base_url)
    try:
        yield receiver, control
    finally:
        control.close()
        sim.stop()
        receiver.stop()


def test_behind_a_tunnel_webhooks_are_signed_over_the_public_url_and_delivered_locally() -> None:
    with delivering_to_a_receiver("https://abc123.tunnel.example.com/webhooks/meld", retry_delays=()) as (
        receiver,
        control,
    ):
        response = control.http.post("/_sim/connections", json={"externalCustomerId": "customer-1", "status": "ACTIVE"})
        assert response.status_code == 201
        receiver.wait_for(2)
        assert [item.signature_error for item in receiver.received] == [None, None]


@pytest.mark.parametrize("order", ["before", "after"])
def test_a_completion_and_its_status_change_are_stamped_in_the_configured_order(order: str) -> None:
    with delivering_to_a_receiver(completed_stamped=order) as (receiver, control):
        control.create_connection("customer-1", institution_name="Chase")
        receiver.wait_for(2)
        completed = receiver.events(COMPLETED)[0]["timestamp"]
        change = receiver.events(STATUS_CHANGE)[0]["timestamp"]
        assert (completed < change) == (order == "before")
        assert completed != change


def test_deliveries_can_be_delayed_by_event_type_and_duplicated() -> None:
    with delivering_to_a_receiver(delivery_delays={STATUS_CHANGE: 0.3}, duplicate_deliveries=1) as (receiver, control):
        control.create_connection("customer-1", institution_name="Chase")
        receiver.wait_for(4)
        # The status change, though sent second and stamped later, arrives after both copies of the completion
        types = [item.envelope["eventType"] for item in receiver.received]
        assert types == [COMPLETED, COMPLETED, STATUS_CHANGE, STATUS_CHANGE]
        assert len({item.envelope["eventId"] for item in receiver.received}) == 2
        assert all(item.signature_error is None for item in receiver.received)


def test_the_delivery_options_are_read_from_the_environment() -> None:
    config = SimulatorConfig.from_env(
        {
            "LOCAL_MELD_COMPLETED_STAMPED": "after",
            "LOCAL_MELD_DELIVERY_DELAYS": f"{STATUS_CHANGE}=0.5, {COMPLETED}=1",
            "LOCAL_MELD_DUPLICATE_DELIVERIES": "2",
        }
    )
    assert (config.completed_stamped, config.duplicate_deliveries) == ("after", 2)
    assert config.delivery_delays == {STATUS_CHANGE: 0.5, COMPLETED: 1.0}
    with pytest.raises(ValueError, match="completed_stamped must be 'before' or 'after'"):
        SimulatorConfig.from_env({"LOCAL_MELD_COMPLETED_STAMPED": "sideways"})
