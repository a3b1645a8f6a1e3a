"""The Meld client against an ``httpx.MockTransport`` standing in for Meld: requests, retries, deadline, errors."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connection_repair.adapters.meld.client import MeldClient
from connection_repair.adapters.meld.errors import (
    MeldAuthError,
    MeldBadRequest,
    MeldBadResponse,
    MeldConflict,
    MeldError,
    MeldNotFound,
    MeldRateLimited,
    MeldUnavailable,
)
from connection_repair.adapters.meld.gateway import MeldConnectionDirectory
from connection_repair.adapters.meld.models import NewConnectionGrant, RepairGrant
from connection_repair.ingestion.ports import ConnectionDirectory

BASE_URL = "https://api-sb.meld.io"
API_KEY = "W9xsk_test_NOT-A-REAL-KEY-7f3a"
CONNECT_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3NzIzNzY0MDB9.c2lnbmF0dXJlLWJ5dGVz"
WIDGET_URL = f"https://meldcrypto.com/bank-linking/connect?connectToken={CONNECT_TOKEN}"
PROVIDER_TOKEN = "access-sandbox-provider-token-5c1d"
SECRETS = (API_KEY, CONNECT_TOKEN, WIDGET_URL, PROVIDER_TOKEN)
CONNECTION_ID = "WQ4mBt3BEX2cmhCvSPyfTu"

CONNECTION_BODY: dict[str, Any] = {
    "id": CONNECTION_ID,
    "accountId": "acct-1",
    "customerId": "cust-1",
    "externalCustomerId": "ext-1",
    "institutionId": "Ntj3AwgdridJc2rtfeheku",
    "institutionName": "Chase",
    "status": "RECONNECT_REQUIRED",
    "statusReason": "LOGIN_REQUIRED",
    "products": ["TRANSACTIONS", "BALANCES"],
    "optionalProducts": [],
    "regions": ["US"],
    "createdAt": "2026-02-01T10:00:00.123456Z",
    "successfullyAggregatedAt": "2026-02-01T10:05:00Z",
    "serviceProviderDetails": {"serviceProvider": "PLAID", "accessToken": PROVIDER_TOKEN},
    "duplicateConnectionIds": ["older-1"],
    "activeDuplicateConnectionId": None,
    "aFieldMeldAddsLater": {"x": 1},
}
START_BODY = {
    "id": CONNECTION_ID,
    "connectToken": CONNECT_TOKEN,
    "customerId": "cust-1",
    "externalCustomerId": "ext-1",
    "widgetUrl": WIDGET_URL,
}
REPAIR_BODY = {
    "id": CONNECTION_ID,
    "connectToken": CONNECT_TOKEN,
    "institutionId": "Ntj3AwgdridJc2rtfeheku",
    "widgetUrl": WIDGET_URL,
}

# --- Meld stand-in and helpers ---------------------------------------------------------------------------------

Responder = Callable[[httpx.Request], httpx.Response]


class MeldStandIn:
    """Meld as a MockTransport handler: scripted responders in order (the last repeats); records every request."""

    def __init__(self, *responders: Responder) -> None:
        self.responders = responders
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responders[min(len(self.requests), len(self.responders)) - 1](request)

    @property
    def only_request(self) -> httpx.Request:
        assert len(self.requests) == 1
        return self.requests[0]

    def idempotency_keys(self) -> list[str | None]:
        return [request.headers.get("X-Idempotency-Key") for request in self.requests]


class FakeClock:
    """Monotonic time that only moves when the client sleeps or a responder says the network took time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self.sleep_ended_at: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept.append(seconds)
        self.now += seconds
        self.sleep_ended_at.append(self.now)


def reply(status: int, body: object = None, headers: dict[str, str] | None = None) -> Responder:
    return lambda request: httpx.Response(status, json=body, headers=headers)


def raw(status: int, content: bytes, content_type: str | None) -> Responder:
    headers = {"Content-Type": content_type} if content_type else {}
    return lambda request: httpx.Response(status, content=content, headers=headers)


def meld_error(
    status: int, code: str = "ERROR", request_id: str = "req-1", headers: dict[str, str] | None = None
) -> Responder:
    body = {
        "code": code,
        "message": f"{code} happened",
        "errors": [f"{code} detail"],
        "requestId": request_id,
        "timestamp": "2026-03-01T12:00:00.000000Z",
    }
    return reply(status, body, headers)


def numbered_errors(status: int) -> Responder:
    """Every call fails with a fresh requestId: req-1, req-2, ..."""
    count = 0

    def respond(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        return meld_error(status, "SERVER_ERROR", f"req-{count}")(request)

    return respond


def raising(error: type[httpx.TransportError]) -> Responder:
    def respond(request: httpx.Request) -> httpx.Response:
        raise error("simulated", request=request)

    return respond


def make_client(meld: MeldStandIn, clock: FakeClock | None = None, **options: Any) -> MeldClient:
    clock = clock or FakeClock()
    options.setdefault("api_key", lambda: API_KEY)
    options.setdefault("random", lambda: 0.5)  # mid-range jitter: backoffs of 0.125, 0.25, 0.5 ... seconds
    return MeldClient(
        BASE_URL, transport=httpx.MockTransport(meld), sleep=clock.sleep, monotonic=clock.monotonic, **options
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def assert_standard_headers(request: httpx.Request) -> None:
    assert request.headers["Authorization"] == f"BASIC {API_KEY}"
    assert request.headers["Meld-Version"] == "2025-03-04"
    assert request.headers["Accept"] == "application/json"


def assert_fresh_uuid4(key: str | None) -> None:
    assert key is not None
    assert uuid.UUID(key).version == 4


# --- Each method, happy path -----------------------------------------------------------------------------------


def test_get_connection_reads_the_connection() -> None:
    # Given
    meld = MeldStandIn(reply(200, CONNECTION_BODY))

    # When
    with make_client(meld) as client:
        info = client.get_connection(CONNECTION_ID)

    # Then: the request
    request = meld.only_request
    assert request.method == "GET"
    assert request.url == httpx.URL(f"{BASE_URL}/bank-linking/connections/{CONNECTION_ID}")
    assert_standard_headers(request)
    assert "X-Idempotency-Key" not in request.headers
    assert "Content-Type" not in request.headers
    # Then: the model, snake_case in code
    assert info.connection_id == CONNECTION_ID
    assert info.account_id == "acct-1"
    assert info.customer_id == "cust-1"
    assert info.external_customer_id == "ext-1"
    assert info.institution_id == "Ntj3AwgdridJc2rtfeheku"
    assert info.institution_name == "Chase"
    assert (info.status, info.status_reason) == ("RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    assert info.products == ["TRANSACTIONS", "BALANCES"]
    assert info.created_at == datetime(2026, 2, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert info.duplicate_connection_ids == ["older-1"]
    assert info.active_duplicate_connection_id is None


def test_the_directory_port_reads_a_known_connection() -> None:
    meld = MeldStandIn(reply(200, CONNECTION_BODY))
    directory: ConnectionDirectory = MeldConnectionDirectory(make_client(meld))

    connection = directory.get_connection(CONNECTION_ID)

    assert connection is not None
    assert (connection.connection_id, connection.status) == (CONNECTION_ID, "RECONNECT_REQUIRED")


def test_the_directory_port_answers_none_for_an_unknown_connection() -> None:
    meld = MeldStandIn(meld_error(404, "CONNECTION_NOT_FOUND"))
    directory: ConnectionDirectory = MeldConnectionDirectory(make_client(meld))

    assert directory.get_connection("unknown") is None
    assert len(meld.requests) == 1


def test_the_directory_port_passes_other_failures_on(clock: FakeClock) -> None:
    meld = MeldStandIn(meld_error(401, "UNAUTHORIZED"))
    directory = MeldConnectionDirectory(make_client(meld, clock))

    with pytest.raises(MeldAuthError):
        directory.get_connection(CONNECTION_ID)


def test_service_provider_details_are_never_kept() -> None:
    # Given Meld's connection, with provider access tokens and a field we do not know
    meld = MeldStandIn(reply(200, CONNECTION_BODY), reply(200, {"connections": [CONNECTION_BODY], "count": 1}))

    # When
    with make_client(meld) as client:
        info = client.get_connection(CONNECTION_ID)
        page = client.list_connections("ext-1")

    # Then: not in the model, its dumps or its repr
    for model in (info, page):
        dumped = model.model_dump_json() + json.dumps(model.model_dump(mode="json", by_alias=False)) + repr(model)
        assert "serviceProviderDetails" not in dumped
        assert "service_provider_details" not in dumped
        assert PROVIDER_TOKEN not in dumped
        assert "aFieldMeldAddsLater" not in dumped
    assert not info.model_extra


def test_list_connections_sends_the_filters_and_reads_the_page() -> None:
    # Given
    second = {**CONNECTION_BODY, "id": "second", "status": "ACTIVE", "statusReason": None}
    meld = MeldStandIn(reply(200, {"connections": [CONNECTION_BODY, second], "count": 2, "remaining": 5}))

    # When
    page = make_client(meld).list_connections(
        "ext-1", statuses=["RECONNECT_REQUIRED", "DEGRADED"], limit=2, after="cursor-1"
    )

    # Then
    request = meld.only_request
    assert request.method == "GET"
    assert request.url.path == "/bank-linking/connections"
    assert dict(request.url.params) == {
        "externalCustomerId": "ext-1",
        "statuses": "RECONNECT_REQUIRED,DEGRADED",
        "limit": "2",
        "after": "cursor-1",
    }
    assert_standard_headers(request)
    assert [connection.connection_id for connection in page.connections] == [CONNECTION_ID, "second"]
    assert page.connections[1].status_reason is None
    assert (page.count, page.remaining) == (2, 5)


def test_list_connections_sends_only_the_customer_when_unfiltered() -> None:
    meld = MeldStandIn(reply(200, {"connections": []}))

    page = make_client(meld).list_connections("ext-1", statuses=[])

    assert dict(meld.only_request.url.params) == {"externalCustomerId": "ext-1"}
    assert (page.connections, page.count, page.remaining) == ([], None, None)


def test_list_connections_pages_by_status_alone_with_the_key_cursors() -> None:
    # Given: the reconciler's listing names no customer
    body = {**CONNECTION_BODY, "key": "0000000000000042"}
    meld = MeldStandIn(reply(200, {"connections": [body], "count": 1, "remaining": 0}), reply(200, {"connections": []}))
    client = make_client(meld)

    # When
    page = client.list_connections(institution_id="inst-1", statuses=["RECONNECT_REQUIRED"], limit=100, after="41")
    client.list_connections(before="0000000000000042")

    # Then
    first, second = meld.requests
    assert dict(first.url.params) == {
        "institutionId": "inst-1",
        "statuses": "RECONNECT_REQUIRED",
        "limit": "100",
        "after": "41",
    }
    assert dict(second.url.params) == {"before": "0000000000000042"}
    assert page.connections[0].key == "0000000000000042"


def test_list_connections_refuses_both_cursors_without_calling_meld() -> None:
    meld = MeldStandIn(reply(200, {"connections": []}))

    with pytest.raises(ValueError, match="one cursor"):
        make_client(meld).list_connections(after="1", before="2")

    assert meld.requests == []


def test_list_connections_takes_one_status_as_a_plain_string() -> None:
    meld = MeldStandIn(reply(200, {"connections": []}))

    make_client(meld).list_connections("ext-1", statuses="ACTIVE")

    assert meld.only_request.url.params["statuses"] == "ACTIVE"


def test_start_connection_posts_the_customer_and_options() -> None:
    # Given
    meld = MeldStandIn(reply(200, START_BODY))

    # When
    session = make_client(meld).start_connection(
        "ext-1",
        institution_id="Ntj3AwgdridJc2rtfeheku",
        products=["TRANSACTIONS"],
        optional_products=["BALANCES", "OWNERS"],
        regions=["US"],
    )

    # Then
    request = meld.only_request
    assert request.method == "POST"
    assert request.url == httpx.URL(f"{BASE_URL}/bank-linking/connect/start")
    assert_standard_headers(request)
    assert request.headers["Content-Type"] == "application/json"
    assert_fresh_uuid4(request.headers.get("X-Idempotency-Key"))
    assert json.loads(request.content) == {
        "externalCustomerId": "ext-1",
        "institutionId": "Ntj3AwgdridJc2rtfeheku",
        "products": ["TRANSACTIONS"],
        "optionalProducts": ["BALANCES", "OWNERS"],
        "regions": ["US"],
    }
    assert session == NewConnectionGrant(
        connection_id=CONNECTION_ID,
        connect_token=CONNECT_TOKEN,
        customer_id="cust-1",
        external_customer_id="ext-1",
        widget_url=WIDGET_URL,
    )
    assert CONNECT_TOKEN not in repr(session) + str(session)
    assert WIDGET_URL not in repr(session) + str(session)


def test_start_connection_sends_only_the_customer_by_default() -> None:
    meld = MeldStandIn(reply(200, START_BODY))

    make_client(meld).start_connection("ext-1")

    assert json.loads(meld.only_request.content) == {"externalCustomerId": "ext-1"}


def test_repair_connection_posts_the_id_in_the_body() -> None:
    # Given
    meld = MeldStandIn(reply(200, REPAIR_BODY))

    # When
    grant = make_client(meld).repair_connection(CONNECTION_ID)

    # Then
    request = meld.only_request
    assert request.method == "POST"
    assert request.url == httpx.URL(f"{BASE_URL}/bank-linking/connect/repair")
    assert_standard_headers(request)
    assert request.headers["Content-Type"] == "application/json"
    assert_fresh_uuid4(request.headers.get("X-Idempotency-Key"))
    assert json.loads(request.content) == {"connectionId": CONNECTION_ID}
    assert grant == RepairGrant(
        connection_id=CONNECTION_ID,
        connect_token=CONNECT_TOKEN,
        institution_id="Ntj3AwgdridJc2rtfeheku",
        widget_url=WIDGET_URL,
    )
    assert CONNECT_TOKEN not in repr(grant) + str(grant)
    assert WIDGET_URL not in repr(grant) + str(grant)


@pytest.mark.parametrize(
    "responder",
    [
        pytest.param(raw(204, b"", None), id="204-empty"),
        pytest.param(reply(200, {"id": CONNECTION_ID, "status": "DELETED"}), id="200-json"),
        pytest.param(raw(200, b"", "text/plain"), id="200-empty-text"),
    ],
)
def test_delete_connection_sends_delete_and_accepts_any_success(responder: Responder) -> None:
    meld = MeldStandIn(responder)

    make_client(meld).delete_connection(CONNECTION_ID)

    request = meld.only_request
    assert request.method == "DELETE"
    assert request.url == httpx.URL(f"{BASE_URL}/bank-linking/connections/{CONNECTION_ID}")
    assert_standard_headers(request)
    assert "X-Idempotency-Key" not in request.headers


def test_connection_ids_cannot_leave_their_path_segment() -> None:
    meld = MeldStandIn(reply(200, {**CONNECTION_BODY, "id": "a/../b"}))

    make_client(meld).get_connection("a/../b?x=1")

    assert meld.only_request.url.raw_path == b"/bank-linking/connections/a%2F..%2Fb%3Fx%3D1"


@pytest.mark.parametrize("connection_id", ["", ".", ".."])
@pytest.mark.parametrize("method", ["get_connection", "delete_connection", "repair_connection"])
def test_empty_or_dot_ids_are_refused_before_calling_meld(method: str, connection_id: str) -> None:
    meld = MeldStandIn(reply(200, CONNECTION_BODY))

    with pytest.raises(ValueError, match="connection_id"):
        getattr(make_client(meld), method)(connection_id)

    assert meld.requests == []


# --- Idempotency keys and the API key --------------------------------------------------------------------------


def test_retries_of_one_post_share_an_idempotency_key_and_calls_do_not(clock: FakeClock) -> None:
    # Given: the first repair fails once, then everything succeeds
    meld = MeldStandIn(meld_error(500), reply(200, REPAIR_BODY))
    client = make_client(meld, clock)

    # When: two logical calls
    client.repair_connection(CONNECTION_ID)
    client.repair_connection(CONNECTION_ID)

    # Then: three requests; the retry reuses the first call's key, the second call has its own
    first, retry, second = meld.idempotency_keys()
    assert_fresh_uuid4(first)
    assert retry == first
    assert_fresh_uuid4(second)
    assert second != first


def test_a_callers_idempotency_key_is_sent_on_every_attempt(clock: FakeClock) -> None:
    meld = MeldStandIn(raising(httpx.ConnectError), reply(200, START_BODY))

    make_client(meld, clock).start_connection("ext-1", idempotency_key="repair-episode-42")

    assert meld.idempotency_keys() == ["repair-episode-42", "repair-episode-42"]


@pytest.mark.parametrize(
    "first",
    [raising(httpx.ReadTimeout), raising(httpx.RemoteProtocolError), meld_error(500), meld_error(502)],
    ids=["read-timeout", "dropped", "500", "502"],
)
def test_a_start_whose_outcome_is_unknown_is_not_repeated(clock: FakeClock, first: Any) -> None:
    # Meld may have created the connection: a second start would create another one
    meld = MeldStandIn(first, reply(200, START_BODY))
    with pytest.raises(MeldUnavailable):
        make_client(meld, clock).start_connection("ext-1")
    assert len(meld.requests) == 1


@pytest.mark.parametrize(
    "first",
    [raising(httpx.ConnectError), raising(httpx.ConnectTimeout), meld_error(429), meld_error(503)],
    ids=["connect-error", "connect-timeout", "429", "503"],
)
def test_a_start_meld_surely_did_not_take_is_retried(clock: FakeClock, first: Any) -> None:
    meld = MeldStandIn(first, reply(200, START_BODY))
    assert make_client(meld, clock).start_connection("ext-1").connect_token
    assert len(meld.requests) == 2


def test_a_repair_whose_outcome_is_unknown_is_retried(clock: FakeClock) -> None:
    # A second repair token is harmless: the first is never used
    meld = MeldStandIn(raising(httpx.ReadTimeout), reply(200, REPAIR_BODY))
    assert make_client(meld, clock).repair_connection(CONNECTION_ID).connect_token
    assert len(meld.requests) == 2


def test_the_api_key_is_resolved_for_every_request(clock: FakeClock) -> None:
    # Given a key source that rotates between calls
    keys = iter(["key-1", "key-2", "key-3"])
    meld = MeldStandIn(meld_error(503), reply(200, CONNECTION_BODY))
    client = make_client(meld, clock, api_key=lambda: next(keys))

    # When
    client.get_connection(CONNECTION_ID)
    client.get_connection(CONNECTION_ID)

    # Then
    assert [request.headers["Authorization"] for request in meld.requests] == [
        "BASIC key-1",
        "BASIC key-2",
        "BASIC key-3",
    ]


# --- Errors that are not retried -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [
        (400, MeldBadRequest, "INVALID_REQUEST"),
        (422, MeldBadRequest, "UNPROCESSABLE"),
        (401, MeldAuthError, "UNAUTHORIZED"),
        (403, MeldAuthError, "FORBIDDEN"),
        (404, MeldNotFound, "CONNECTION_NOT_FOUND"),
        (409, MeldConflict, "CONNECTION_NOT_REPAIRABLE"),
        (405, MeldError, "METHOD_NOT_ALLOWED"),
    ],
)
def test_client_errors_are_typed_and_not_retried(
    clock: FakeClock, status: int, error_type: type[MeldError], code: str
) -> None:
    # Given
    meld = MeldStandIn(meld_error(status, code, "req-abc"))

    # When
    with pytest.raises(error_type) as raised:
        make_client(meld, clock).repair_connection(CONNECTION_ID)

    # Then
    error = raised.value
    assert type(error) is error_type
    assert (error.status_code, error.code, error.request_id) == (status, code, "req-abc")
    assert error.message == f"{code} happened"
    assert error.retry_after is None
    assert "req-abc" in str(error)
    assert len(meld.requests) == 1
    assert clock.slept == []


def test_a_non_json_error_body_still_gets_its_type(clock: FakeClock) -> None:
    meld = MeldStandIn(raw(404, b"<html><body>Not Found</body></html>", "text/html"))

    with pytest.raises(MeldNotFound) as raised:
        make_client(meld, clock).get_connection(CONNECTION_ID)

    assert (raised.value.status_code, raised.value.code, raised.value.request_id) == (404, None, None)
    assert raised.value.message == "Not Found"


def test_a_non_json_gateway_error_is_retried_then_unavailable(clock: FakeClock) -> None:
    meld = MeldStandIn(raw(502, b"<html>Bad Gateway</html>", "text/html"))

    with pytest.raises(MeldUnavailable) as raised:
        make_client(meld, clock).get_connection(CONNECTION_ID)

    assert raised.value.status_code == 502
    assert len(meld.requests) == 4


# --- Retries ---------------------------------------------------------------------------------------------------


def test_rate_limit_waits_for_retry_after_then_succeeds(clock: FakeClock) -> None:
    meld = MeldStandIn(meld_error(429, "RATE_LIMITED", headers={"Retry-After": "2"}), reply(200, REPAIR_BODY))

    grant = make_client(meld, clock).repair_connection(CONNECTION_ID)

    assert grant.connection_id == CONNECTION_ID
    assert len(meld.requests) == 2
    assert clock.slept == [2.0]


def test_retry_after_as_an_http_date_counts_from_the_servers_clock(clock: FakeClock) -> None:
    server_now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    headers = {
        "Date": format_datetime(server_now, usegmt=True),
        "Retry-After": format_datetime(server_now + timedelta(seconds=3), usegmt=True),
    }
    meld = MeldStandIn(meld_error(503, headers=headers), reply(200, CONNECTION_BODY))

    make_client(meld, clock).get_connection(CONNECTION_ID)

    assert clock.slept == [3.0]


def test_an_unreadable_retry_after_falls_back_to_backoff(clock: FakeClock) -> None:
    meld = MeldStandIn(meld_error(429, headers={"Retry-After": "soon"}), reply(200, CONNECTION_BODY))

    make_client(meld, clock).get_connection(CONNECTION_ID)

    assert clock.slept == [0.125]


def test_server_errors_are_retried_with_backoff_until_success(clock: FakeClock) -> None:
    meld = MeldStandIn(meld_error(500), meld_error(500), reply(200, CONNECTION_BODY))

    info = make_client(meld, clock).get_connection(CONNECTION_ID)

    assert info.connection_id == CONNECTION_ID
    assert len(meld.requests) == 3
    assert clock.slept == [0.125, 0.25]


def test_backoff_doubles_up_to_its_cap(clock: FakeClock) -> None:
    # Given the largest jitter, many attempts and all the time in the world
    meld = MeldStandIn(meld_error(500))
    client = make_client(meld, clock, random=lambda: 1.0, max_attempts=8, deadline_seconds=1000)

    with pytest.raises(MeldUnavailable):
        client.get_connection(CONNECTION_ID)

    assert clock.slept == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_server_errors_forever_are_unavailable_after_max_attempts(clock: FakeClock) -> None:
    meld = MeldStandIn(numbered_errors(503))

    with pytest.raises(MeldUnavailable) as raised:
        make_client(meld, clock).repair_connection(CONNECTION_ID)

    assert len(meld.requests) == 4
    assert len(clock.slept) == 3
    assert (raised.value.status_code, raised.value.request_id) == (503, "req-4")


def test_rate_limits_forever_end_rate_limited_with_retry_after(clock: FakeClock) -> None:
    meld = MeldStandIn(meld_error(429, "RATE_LIMITED", headers={"Retry-After": "1"}))

    with pytest.raises(MeldRateLimited) as raised:
        make_client(meld, clock).get_connection(CONNECTION_ID)

    assert len(meld.requests) == 4
    assert clock.slept == [1.0, 1.0, 1.0]
    assert raised.value.retry_after == 1.0


def test_timeouts_are_retried_then_unavailable(clock: FakeClock) -> None:
    meld = MeldStandIn(raising(httpx.ReadTimeout))

    with pytest.raises(MeldUnavailable) as raised:
        make_client(meld, clock).repair_connection(CONNECTION_ID)

    assert len(meld.requests) == 4
    assert raised.value.status_code is None
    assert isinstance(raised.value.__cause__, httpx.ReadTimeout)


def test_a_connection_error_is_retried(clock: FakeClock) -> None:
    meld = MeldStandIn(raising(httpx.ConnectError), reply(200, CONNECTION_BODY))

    info = make_client(meld, clock).get_connection(CONNECTION_ID)

    assert info.connection_id == CONNECTION_ID
    assert len(meld.requests) == 2


# --- The deadline ----------------------------------------------------------------------------------------------


def slow_meld(clock: FakeClock, latencies: Iterator[float], responder: Responder) -> Responder:
    """Each request takes the next latency, unless the attempt's read timeout cuts it short (then ReadTimeout)."""

    def respond(request: httpx.Request) -> httpx.Response:
        latency = next(latencies)
        read_timeout = request.extensions["timeout"]["read"]
        if latency > read_timeout:
            clock.now += read_timeout
            raise httpx.ReadTimeout("simulated", request=request)
        clock.now += latency
        return responder(request)

    return respond


def test_the_default_timeouts_are_explicit() -> None:
    meld = MeldStandIn(reply(200, CONNECTION_BODY))

    make_client(meld).get_connection(CONNECTION_ID)

    assert meld.only_request.extensions["timeout"] == {"connect": 2.0, "read": 8.0, "write": 8.0, "pool": 2.0}


def test_a_retry_after_past_the_deadline_is_not_waited_for(clock: FakeClock) -> None:
    meld = MeldStandIn(meld_error(429, "RATE_LIMITED", headers={"Retry-After": "30"}))

    with pytest.raises(MeldRateLimited) as raised:
        make_client(meld, clock, deadline_seconds=20).get_connection(CONNECTION_ID)

    assert len(meld.requests) == 1
    assert clock.slept == []
    assert raised.value.retry_after == 30.0


def test_slow_failures_stop_at_the_deadline(clock: FakeClock) -> None:
    # Given Meld answering 503 after 7 s each time, and a 20 s deadline
    meld = MeldStandIn(slow_meld(clock, iter([7.0] * 10), meld_error(503)))
    client = make_client(meld, clock, deadline_seconds=20, max_attempts=10)

    # When
    with pytest.raises(MeldUnavailable):
        client.get_connection(CONNECTION_ID)

    # Then: 0-7 s, sleep, 7.125-14.125 s, sleep, then the third attempt's timeout is cut to what is left
    assert len(meld.requests) == 3
    assert [request.extensions["timeout"]["read"] for request in meld.requests] == [8.0, 8.0, 5.625]
    assert clock.now == 20.0


@settings(max_examples=200, deadline=None)
@given(
    latencies=st.lists(st.floats(0, 12), min_size=12, max_size=12),
    jitter=st.floats(0, 1, exclude_max=True),
    retry_after=st.none() | st.integers(0, 25),
    deadline_seconds=st.floats(0.5, 28),
)
def test_a_call_never_outlives_its_deadline(
    latencies: list[float], jitter: float, retry_after: int | None, deadline_seconds: float
) -> None:
    # Given a slow, failing Meld
    clock = FakeClock()
    failure = meld_error(503) if retry_after is None else meld_error(429, headers={"Retry-After": str(retry_after)})
    meld = MeldStandIn(slow_meld(clock, iter(latencies), failure))
    client = make_client(meld, clock, random=lambda: jitter, deadline_seconds=deadline_seconds, max_attempts=10)

    # When
    with pytest.raises((MeldRateLimited, MeldUnavailable)):
        client.get_connection(CONNECTION_ID)

    # Then: no sleep ends at or past the deadline, and the whole call fits in it
    assert all(ended < deadline_seconds for ended in clock.sleep_ended_at)
    assert sum(clock.slept) < deadline_seconds
    assert clock.now <= deadline_seconds + 1e-9
    assert len(meld.requests) <= 10


# --- Unusable successes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("responder", "expected"),
    [
        pytest.param(raw(200, b'{"id": "abc", ', "application/json"), "not valid JSON", id="invalid-json"),
        pytest.param(raw(200, b"<html>maintenance</html>", "text/html"), "text/html", id="html"),
        pytest.param(raw(200, b'{"id": "abc"}', None), "no content type", id="no-content-type"),
        pytest.param(raw(200, b"null", "application/json"), "RepairGrant", id="null-body"),
        pytest.param(reply(200, [REPAIR_BODY]), "RepairGrant", id="list-body"),
    ],
)
def test_an_unusable_success_is_a_bad_response_and_not_retried(
    clock: FakeClock, responder: Responder, expected: str
) -> None:
    meld = MeldStandIn(responder)

    with pytest.raises(MeldBadResponse, match=expected) as raised:
        make_client(meld, clock).repair_connection(CONNECTION_ID)

    assert raised.value.status_code == 200
    assert len(meld.requests) == 1


def test_a_body_of_the_wrong_shape_is_reported_without_quoting_it(clock: FakeClock) -> None:
    # Given a repair response with the token but no widget URL
    meld = MeldStandIn(reply(200, {"id": CONNECTION_ID, "connectToken": CONNECT_TOKEN}))

    # When
    with pytest.raises(MeldBadResponse) as raised:
        make_client(meld, clock).repair_connection(CONNECTION_ID)

    # Then: the message names the field; neither it nor anything chained to it quotes the body
    error = raised.value
    assert "widgetUrl: missing" in str(error)
    assert CONNECT_TOKEN not in str(error)
    assert error.__cause__ is None
    assert error.__context__ is None


def test_json_with_a_charset_is_json() -> None:
    meld = MeldStandIn(raw(200, json.dumps(REPAIR_BODY).encode(), "application/json; charset=utf-8"))

    assert make_client(meld).repair_connection(CONNECTION_ID).connection_id == CONNECTION_ID


# --- Lifecycle -------------------------------------------------------------------------------------------------


def test_the_client_closes_with_its_context() -> None:
    meld = MeldStandIn(reply(200, CONNECTION_BODY))
    with make_client(meld) as client:
        client.get_connection(CONNECTION_ID)

    with pytest.raises(RuntimeError, match="closed"):
        client.get_connection(CONNECTION_ID)


@pytest.mark.parametrize("options", [{"max_attempts": 0}, {"deadline_seconds": 0}])
def test_nonsense_settings_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        make_client(MeldStandIn(reply(200, {})), **options)


# --- Logs ------------------------------------------------------------------------------------------------------


def test_secrets_never_reach_the_logs(caplog: pytest.LogCaptureFixture, clock: FakeClock) -> None:
    # Given every flow, each with the secrets somewhere in the exchange
    flows: list[tuple[MeldStandIn, Callable[[MeldClient], object]]] = [
        (MeldStandIn(reply(200, CONNECTION_BODY)), lambda c: c.get_connection(CONNECTION_ID)),
        (MeldStandIn(reply(200, {"connections": [CONNECTION_BODY]})), lambda c: c.list_connections("ext-1")),
        (MeldStandIn(meld_error(503, request_id="req-retry"), reply(200, START_BODY)),
         lambda c: c.start_connection("ext-1")),
        (MeldStandIn(meld_error(429, headers={"Retry-After": "1"}), reply(200, REPAIR_BODY)),
         lambda c: c.repair_connection(CONNECTION_ID)),
        (MeldStandIn(raw(204, b"", None)), lambda c: c.delete_connection(CONNECTION_ID)),
        (MeldStandIn(meld_error(409, "CONNECTION_NOT_REPAIRABLE")), lambda c: c.repair_connection(CONNECTION_ID)),
        (MeldStandIn(meld_error(401, "UNAUTHORIZED")), lambda c: c.get_connection(CONNECTION_ID)),
        (MeldStandIn(numbered_errors(503)), lambda c: c.repair_connection(CONNECTION_ID)),
        (MeldStandIn(raising(httpx.ReadTimeout)), lambda c: c.repair_connection(CONNECTION_ID)),
        (MeldStandIn(reply(200, {"id": CONNECTION_ID, "connectToken": CONNECT_TOKEN})),
         lambda c: c.repair_connection(CONNECTION_ID)),
        (MeldStandIn(raw(200, json.dumps(REPAIR_BODY).encode(), "text/html")),
         lambda c: c.repair_connection(CONNECTION_ID)),
    ]  # fmt: skip

    # When
    errors: list[MeldError] = []
    with caplog.at_level(logging.DEBUG):
        for meld, call in flows:
            try:
                call(make_client(meld, clock))
            except MeldError as error:
                errors.append(error)

    # Then: the failures were logged, with what an operator needs
    assert len(errors) == 6
    retry = next(record for record in caplog.records if getattr(record, "meld_request_id", None) == "req-retry")
    assert retry.levelno == logging.WARNING
    assert (retry.meld_method, retry.meld_path, retry.meld_status, retry.meld_attempt) == (  # type: ignore[attr-defined]
        "POST",
        "/bank-linking/connect/start",
        503,
        1,
    )
    assert "req-retry" in retry.getMessage()
    # Then: no record, and no error a caller might log, carries a secret
    logged = [record.getMessage() + repr(vars(record)) for record in caplog.records]
    assert logged
    for text in logged + [f"{error!s} {error!r}" for error in errors]:
        for secret in SECRETS:
            assert secret not in text
