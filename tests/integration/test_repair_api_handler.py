"""The Repair API through its real handler: moto for DynamoDB, httpx's MockTransport standing in for Meld.

Each status code is tested for the reason it is documented for (README, "Repair API").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from connection_repair.domain.status_policy import Action
from local.aws_resources import LocalResources
from tests.repair_api_support import (
    CONNECTION_ID,
    CUSTOMER,
    NOW,
    OTHER_CUSTOMER,
    TOKEN,
    WIDGET_URL,
    MeldStandIn,
    RepairApi,
    connect_token,
    connection,
    install_repair_api,
    meld_error,
    meld_gateway,
    meld_json,
)
from tests.support import load_event, placeholder_secret, put_connections

REPAIR = ("POST", "/bank-linking/connect/repair")
START = ("POST", "/bank-linking/connect/start")


@pytest.fixture
def api(aws: LocalResources, monkeypatch: pytest.MonkeyPatch) -> RepairApi:
    return install_repair_api(aws.table_name, monkeypatch)


def seed(api: RepairApi, *connections_: object) -> None:
    for item in connections_ or (connection(),):
        api.store.save_connection(item, expected_version=None)  # type: ignore[arg-type]


# --- Reads -------------------------------------------------------------------------------------------------------


def test_list_answers_only_the_callers_connections_those_needing_attention_first(api: RepairApi):
    seed(
        api,
        connection("a-active", status="ACTIVE", reason=None),
        connection("b-broken"),
        connection("c-theirs", customer=OTHER_CUSTOMER),
    )
    status, _, body = api.call("GET", "/connections")
    assert status == 200
    assert [c["connectionId"] for c in body["connections"]] == ["b-broken", "a-active"]
    first = body["connections"][0]
    assert (first["action"], first["status"], first["statusReason"], first["institutionName"]) == (
        "REPAIR",
        "RECONNECT_REQUIRED",
        "LOGIN_REQUIRED",
        "Chase",
    )
    assert first["attentionSince"] == (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(("count", "listed"), [(7, 7), (205, 200)])
def test_the_list_reads_every_page_of_the_index_up_to_its_bound(api: RepairApi, count: int, listed: int):
    # DynamoDB pages a query at 1 MB; pages of 3 here (the query's Limit, set on the wire) make the store page.
    client = api.service._connections._client  # type: ignore[attr-defined]

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = 3 if count < 10 else 50

    client.meta.events.register("provide-client-params.dynamodb.Query", small_pages)
    put_connections(client, api.table_name, [connection(f"conn-{number:03d}") for number in range(count)])
    status, _, body = api.call("GET", "/connections")
    assert status == 200
    ids = [c["connectionId"] for c in body["connections"]]
    assert len(ids) == len(set(ids)) == listed
    if count == listed:
        assert set(ids) == {f"conn-{number:03d}" for number in range(count)}


def _history(api: RepairApi) -> None:
    seed(
        api,
        connection("a-broken"),
        connection("b-active", status="ACTIVE", reason=None),
        connection("c-expired", status="EXPIRED", reason=None),
        connection("d-waiting", status="DEGRADED", reason="INSTITUTION_CURRENTLY_UNAVAILABLE"),
        connection("e-replaced", status="EXPIRED", reason=None, superseded_by="f-new"),
        connection("f-new", status="ACTIVE", reason=None, replaces_connection_id="e-replaced"),
        connection("g-deleted", status="DELETED", reason=None),
        connection("h-abandoned", status="IN_PROGRESS", reason=None, replaces_connection_id="c-expired"),
    )


def _listed(api: RepairApi, **query: str) -> list[str]:
    status, _, body = api.call("GET", "/connections", query=query)
    assert status == 200, body
    return sorted(c["connectionId"] for c in body["connections"])


def test_the_list_leaves_out_replaced_deleted_and_abandoned_connections_unless_asked(api: RepairApi):
    _history(api)
    current = ["a-broken", "b-active", "c-expired", "d-waiting", "f-new"]
    assert _listed(api) == current
    assert _listed(api, include="superseded") == sorted([*current, "e-replaced"])
    assert _listed(api, include="deleted") == sorted([*current, "g-deleted"])
    assert _listed(api, include="abandoned") == sorted([*current, "h-abandoned"])
    assert _listed(api, include="superseded,deleted,abandoned") == sorted(
        [*current, "e-replaced", "g-deleted", "h-abandoned"]
    )


def test_the_list_narrows_to_connections_with_something_to_show(api: RepairApi):
    _history(api)
    assert _listed(api, needsAction="true") == ["a-broken", "c-expired", "d-waiting"]
    assert _listed(api, needsAction="false") == ["a-broken", "b-active", "c-expired", "d-waiting", "f-new"]
    assert _listed(api, needsAction="true", include="deleted") == ["a-broken", "c-expired", "d-waiting", "g-deleted"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"include": "everything"}, "include"),
        ({"include": "deleted,"}, "include"),
        ({"needsAction": "maybe"}, "needsAction"),
    ],
)
def test_an_unknown_list_filter_is_422(api: RepairApi, query: dict[str, str], field: str):
    seed(api)
    status, _, body = api.call("GET", "/connections", query=query)
    assert status == 422
    assert [error["field"] for error in body["errors"]] == [field]


def test_list_is_empty_for_a_customer_without_connections(api: RepairApi):
    seed(api)
    assert api.call("GET", "/connections", sub="nobody")[2] == {"connections": []}


def test_the_committed_events_drive_every_route(api: RepairApi):
    seed(api)
    answers = {
        name: api.invoke(load_event(name))["statusCode"]
        for name in (
            "repair_api_list_connections",
            "repair_api_get_connection",
            "repair_api_repair_connection",
            "repair_api_repair_other_customer",
            "repair_api_start_connection",
            "repair_api_put_notifications",
            "repair_api_get_notifications",
        )
    }
    assert answers == {
        "repair_api_list_connections": 200,
        "repair_api_get_connection": 200,
        "repair_api_repair_connection": 200,
        "repair_api_repair_other_customer": 404,
        "repair_api_start_connection": 201,
        "repair_api_put_notifications": 200,
        "repair_api_get_notifications": 200,
    }


def test_get_one_connection(api: RepairApi):
    seed(api)
    status, _, body = api.call("GET", f"/connections/{CONNECTION_ID}")
    assert status == 200
    assert (body["connectionId"], body["action"], body["repairAttempts"]) == (CONNECTION_ID, "REPAIR", 0)


def test_someone_elses_connection_is_answered_exactly_like_a_missing_one(api: RepairApi):
    seed(api)
    for method, suffix in (("GET", ""), ("POST", "/repair")):
        theirs = api.call(method, f"/connections/{CONNECTION_ID}{suffix}", sub=OTHER_CUSTOMER)
        missing = api.call(method, f"/connections/NoSuchConnection{suffix}")
        assert theirs[0] == missing[0] == 404
        assert theirs[2] == missing[2] == {"code": "CONNECTION_NOT_FOUND", "message": "no such connection"}
    assert api.meld.requests == []  # nothing was asked of Meld for someone else's connection


# --- Identity ----------------------------------------------------------------------------------------------------


def test_no_customer_claim_is_401(api: RepairApi):
    seed(api)
    assert api.call("GET", "/connections", sub=None)[:1] == (401,)
    assert api.call("GET", "/connections", claims={"email": "x@example.com"})[0] == 401
    assert api.call("GET", "/connections", claims={"sub": ""})[0] == 401


def test_the_customer_claim_is_configurable(api: RepairApi, monkeypatch: pytest.MonkeyPatch):
    from connection_repair.wiring.repair_api import repair_api_settings

    seed(api)
    monkeypatch.setenv("CUSTOMER_ID_CLAIM", "custom:externalCustomerId")
    repair_api_settings.cache_clear()
    try:
        claims = {"sub": "cognito-uuid", "custom:externalCustomerId": CUSTOMER}
        status, _, body = api.call("GET", "/connections", claims=claims)
        assert status == 200
        assert len(body["connections"]) == 1
        assert api.call("GET", "/connections", claims={"sub": CUSTOMER})[0] == 401
    finally:
        repair_api_settings.cache_clear()


# --- Repair ------------------------------------------------------------------------------------------------------


def test_repair_answers_a_token_not_to_be_cached_and_records_the_attempt(api: RepairApi):
    seed(api)
    status, headers, body = api.call("POST", f"/connections/{CONNECTION_ID}/repair")

    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert body == {
        "connectionId": CONNECTION_ID,
        "institutionId": "Ntj3AwgdridJc2rtfeheku",
        "connectToken": TOKEN,
        "widgetUrl": WIDGET_URL,
        # The token says 4 hours; the documented 3 hours win.
        "expiresAt": (NOW + timedelta(hours=3)).isoformat().replace("+00:00", "Z"),
    }
    [request] = api.meld.calls(*REPAIR)
    assert json.loads(request.content) == {"connectionId": CONNECTION_ID}
    assert request.headers["authorization"] == "BASIC test-meld-api-key"
    assert request.headers["x-idempotency-key"]

    stored = api.store.get_connection(CONNECTION_ID)
    assert stored is not None
    assert (stored.repair_attempts, stored.last_repair_at, stored.repair_pending, stored.version) == (1, NOW, True, 2)
    view = api.call("GET", f"/connections/{CONNECTION_ID}")[2]
    assert (view["repairAttempts"], view["repairPending"], view["repairStartedAt"]) == (1, True, "2026-11-25T12:00:00Z")


def test_a_new_repair_token_forgets_the_completion_of_the_previous_one(api: RepairApi):
    # The customer finished the widget of an earlier token (its verdict still awaited), then asks again
    earlier = NOW - timedelta(minutes=10)
    seed(api, connection(repair_attempts=1, last_repair_at=earlier, repair_pending=True, completed_at=earlier))
    assert api.call("POST", f"/connections/{CONNECTION_ID}/repair")[0] == 200
    stored = api.store.get_connection(CONNECTION_ID)
    assert stored is not None
    assert (stored.repair_attempts, stored.last_repair_at, stored.completed_at) == (2, NOW, None)


def test_a_connection_without_a_pending_repair_says_so(api: RepairApi):
    # Meld judged the last repair (a completion then a status): it was tried, it is no longer pending.
    seed(api, connection(repair_attempts=1, last_repair_at=NOW - timedelta(minutes=5), failed_repairs=1))
    view = api.call("GET", f"/connections/{CONNECTION_ID}")[2]
    assert (view["repairPending"], view["repairStartedAt"], view["lastRepairAt"]) == (
        False,
        None,
        "2026-11-25T11:55:00Z",
    )


def test_repair_reports_the_tokens_own_exp_when_it_is_earlier(api: RepairApi):
    seed(api)
    short = connect_token(NOW + timedelta(minutes=30))
    api.meld.respond(*REPAIR, meld_json(200, {"id": CONNECTION_ID, "connectToken": short, "widgetUrl": "https://w"}))
    status, _, body = api.call("POST", f"/connections/{CONNECTION_ID}/repair")
    assert status == 200
    assert body["expiresAt"] == (NOW + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    # Meld left institutionId out: the stored one is answered.
    assert body["institutionId"] == "Ntj3AwgdridJc2rtfeheku"


@pytest.mark.parametrize("meld_status", ["EXPIRED", "DELETED", "IN_PROGRESS"])
def test_a_connection_meld_cannot_repair_is_409_without_calling_meld(api: RepairApi, meld_status: str):
    seed(api, connection(status=meld_status, reason=None))
    status, headers, body = api.call("POST", f"/connections/{CONNECTION_ID}/repair")
    assert status == 409
    assert body == {
        "code": "CONNECTION_NOT_REPAIRABLE",
        "status": meld_status,
        "action": "START_NEW_CONNECTION",
        "message": f"a connection in status {meld_status} cannot be repaired; start a new connection",
    }
    assert api.meld.requests == []
    assert "Cache-Control" not in headers


def test_a_working_connection_is_409_nothing_to_repair_without_calling_meld(api: RepairApi):
    seed(api, connection(status="ACTIVE", reason=None, action=Action.NONE))
    status, _, body = api.call("POST", f"/connections/{CONNECTION_ID}/repair")
    assert (status, body) == (
        409,
        {
            "code": "NOTHING_TO_REPAIR",
            "status": "ACTIVE",
            "action": "NONE",
            "message": "this connection is ACTIVE: there is nothing to repair",
        },
    )
    assert api.meld.requests == []
    assert api.store.get_connection(CONNECTION_ID).repair_attempts == 0  # type: ignore[union-attr]


def test_meld_409_is_answered_like_the_local_check(api: RepairApi):
    seed(api)
    api.meld.respond(*REPAIR, meld_error(409, "CONNECTION_NOT_REPAIRABLE"))
    status, _, body = api.call("POST", f"/connections/{CONNECTION_ID}/repair")
    assert status == 409
    assert body == {
        "code": "CONNECTION_NOT_REPAIRABLE",
        "status": "RECONNECT_REQUIRED",
        "action": "START_NEW_CONNECTION",
        "message": "Meld cannot repair this connection; start a new connection",
    }
    assert api.store.get_connection(CONNECTION_ID).repair_attempts == 0  # type: ignore[union-attr]


def test_meld_404_is_answered_like_a_missing_connection(api: RepairApi):
    seed(api)
    api.meld.respond(*REPAIR, meld_error(404, "NOT_FOUND"))
    status, _, body = api.call("POST", f"/connections/{CONNECTION_ID}/repair")
    assert (status, body["code"]) == (404, "CONNECTION_NOT_FOUND")


def test_a_replaced_connection_is_409_with_nothing_to_do(api: RepairApi):
    seed(api, connection(superseded_by="new-one", action=Action.NONE))
    status, _, body = api.call("POST", f"/connections/{CONNECTION_ID}/repair")
    assert status == 409
    assert body == {
        "code": "CONNECTION_REPLACED",
        "status": "RECONNECT_REQUIRED",
        "action": "NONE",
        "message": "this connection was replaced by new-one",
    }


@pytest.mark.parametrize(
    ("responder", "retry_after"),
    [
        (lambda: meld_error(429, "RATE_LIMITED", {"Retry-After": "7"}), "7"),
        (lambda: meld_error(429, "RATE_LIMITED"), "5"),
        (lambda: meld_error(500, "INTERNAL"), "5"),
        (lambda: meld_error(503, "UNAVAILABLE", {"Retry-After": "2.5"}), "3"),
    ],
    ids=["429-with-retry-after", "429", "500", "503"],
)
def test_meld_overloaded_or_failing_is_503_with_retry_after_after_bounded_retries(
    api: RepairApi, responder: Callable[[], httpx.Response], retry_after: str, captured_logs: Callable[[], str]
):
    seed(api)
    api.meld.respond(*REPAIR, lambda _request: responder())
    status, headers, body = api.call("POST", f"/connections/{CONNECTION_ID}/repair")

    assert status == 503
    assert headers["Retry-After"] == retry_after
    assert body["code"] == "MELD_UNAVAILABLE"
    assert len(api.meld.calls(*REPAIR)) == 3  # the client's bounded attempts
    logs = captured_logs()
    assert "req-" in logs  # Meld's requestId, for support
    assert "MeldUnavailable" in logs
    assert api.store.get_connection(CONNECTION_ID).repair_attempts == 0  # type: ignore[union-attr]


def test_meld_timing_out_is_503(api: RepairApi):
    seed(api)

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    api.meld.respond(*REPAIR, timeout)
    status, headers, body = api.call("POST", f"/connections/{CONNECTION_ID}/repair")
    assert (status, headers["Retry-After"], body["code"]) == (503, "5", "MELD_UNAVAILABLE")


@pytest.mark.parametrize("meld_status", [401, 403])
def test_meld_refusing_our_key_is_502_configuration_error_with_a_metric(
    api: RepairApi, meld_status: int, captured_logs: Callable[[], str]
):
    seed(api)
    api.meld.respond(*REPAIR, meld_error(meld_status, "UNAUTHORIZED"))
    status, _, body = api.call("POST", f"/connections/{CONNECTION_ID}/repair")
    assert (status, body["code"]) == (502, "MELD_CONFIGURATION_ERROR")
    assert len(api.meld.calls(*REPAIR)) == 1  # not retried
    assert '"MeldConfigurationErrors"' in captured_logs()


@pytest.mark.parametrize("configured", ["nothing", "the stack's placeholder"])
def test_no_meld_api_key_configured_is_the_same_configuration_error_and_meld_is_not_called(
    aws: LocalResources, monkeypatch: pytest.MonkeyPatch, captured_logs: Callable[[], str], configured: str
):
    from aws_lambda_powertools.utilities.parameters import clear_caches

    from connection_repair.adapters.meld.client import MeldClient
    from connection_repair.adapters.meld.gateway import MeldConnectGateway
    from connection_repair.platform.settings import MeldApiSettings
    from connection_repair.wiring.meld import meld_api_key

    api = install_repair_api(aws.table_name, monkeypatch)
    seed(api)
    monkeypatch.delenv("MELD_API_KEY")
    if configured != "nothing":
        monkeypatch.setenv("MELD_API_KEY_SECRET_NAME", placeholder_secret("MeldApiKeySecret"))
    clear_caches()
    key = meld_api_key(MeldApiSettings.from_env())  # the wiring's own key source

    client = MeldClient("https://meld.invalid", key, transport=httpx.MockTransport(api.meld))
    monkeypatch.setattr(api.service, "_meld", MeldConnectGateway(client))
    status, _, body = api.call("POST", f"/connections/{CONNECTION_ID}/repair")
    assert (status, body["code"]) == (502, "MELD_CONFIGURATION_ERROR")
    assert '"MeldConfigurationErrors"' in captured_logs()
    assert api.meld.requests == []  # nothing sent to Meld with a key nobody gave it


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, content=b"<html>not json</html>", headers={"content-type": "application/json"}),
        httpx.Response(200, content=b"{}", headers={"content-type": "application/json"}),
        httpx.Response(200, content=b"ok", headers={"content-type": "text/plain"}),
    ],
    ids=["invalid-json", "wrong-shape", "not-json"],
)
def test_an_unusable_meld_answer_is_502_and_records_nothing(api: RepairApi, response: httpx.Response):
    seed(api)
    api.meld.respond(*REPAIR, response)
    status, _, body = api.call("POST", f"/connections/{CONNECTION_ID}/repair")
    assert (status, body["code"]) == (502, "MELD_BAD_RESPONSE")
    assert api.store.get_connection(CONNECTION_ID).repair_attempts == 0  # type: ignore[union-attr]


def test_meld_rejecting_the_request_is_502(api: RepairApi):
    seed(api)
    api.meld.respond(*REPAIR, meld_error(400, "BAD_REQUEST"))
    assert api.call("POST", f"/connections/{CONNECTION_ID}/repair")[2]["code"] == "MELD_REJECTED"


def test_nothing_secret_is_logged(api: RepairApi, captured_logs: Callable[[], str]):
    seed(api)
    api.call("POST", f"/connections/{CONNECTION_ID}/repair")
    api.call("POST", "/connections", {"replacesConnectionId": CONNECTION_ID})
    logs = captured_logs()
    assert TOKEN not in logs
    assert TOKEN.split(".")[1] not in logs
    assert "institution-connect-sb" not in logs
    assert "test-meld-api-key" not in logs


def test_a_webhook_landing_between_read_and_write_does_not_lose_the_attempt(
    api: RepairApi, monkeypatch: pytest.MonkeyPatch
):
    seed(api)
    store = api.store
    original = api.meld.routes[REPAIR]

    def meanwhile_a_webhook(request: httpx.Request) -> httpx.Response:
        current = store.get_connection(CONNECTION_ID)
        assert current is not None
        changed = current.model_copy(update={"status_reason": "TOKEN_EXPIRED", "version": current.version + 1})
        store.save_connection(changed, expected_version=current.version)
        return original(request)

    api.meld.respond(*REPAIR, meanwhile_a_webhook)
    assert api.call("POST", f"/connections/{CONNECTION_ID}/repair")[0] == 200
    stored = store.get_connection(CONNECTION_ID)
    assert stored is not None
    assert (stored.status_reason, stored.repair_attempts, stored.version) == ("TOKEN_EXPIRED", 1, 3)


# --- Start a new connection -------------------------------------------------------------------------------------


def test_start_a_new_connection(api: RepairApi):
    status, headers, body = api.call(
        "POST", "/connections", {"institutionId": "Ntj3AwgdridJc2rtfeheku", "products": ["BALANCES"]}
    )
    assert status == 201
    assert headers["Cache-Control"] == "no-store"
    assert (body["connectionId"], body["connectToken"], body["replacesConnectionId"]) == (
        "new-connection-1",
        TOKEN,
        None,
    )
    [request] = api.meld.calls(*START)
    assert json.loads(request.content) == {
        "externalCustomerId": CUSTOMER,
        "institutionId": "Ntj3AwgdridJc2rtfeheku",
        "products": ["BALANCES"],
    }
    assert api.store.get_connection("new-connection-1") is None  # Meld's webhooks will tell us about it


def test_start_with_an_empty_body_lets_the_customer_pick(api: RepairApi):
    assert api.call("POST", "/connections", {})[0] == 201
    assert json.loads(api.meld.calls(*START)[0].content) == {"externalCustomerId": CUSTOMER}


def test_start_replacing_one_of_the_callers_connections_remembers_it(api: RepairApi):
    seed(api)
    status, _, body = api.call("POST", "/connections", {"replacesConnectionId": CONNECTION_ID})
    assert (status, body["replacesConnectionId"]) == (201, CONNECTION_ID)
    fresh = api.store.get_connection("new-connection-1")
    assert fresh is not None
    assert (fresh.replaces_connection_id, fresh.external_customer_id, fresh.status) == (
        CONNECTION_ID,
        CUSTOMER,
        "IN_PROGRESS",
    )
    # Until the customer completes it, the new connection is not one they have: listed only when asked for.
    assert _listed(api) == [CONNECTION_ID]
    assert _listed(api, include="abandoned") == [CONNECTION_ID, "new-connection-1"]


def test_replacing_someone_elses_connection_is_404_and_starts_nothing(api: RepairApi):
    seed(api, connection(customer=OTHER_CUSTOMER))
    status, _, body = api.call("POST", "/connections", {"replacesConnectionId": CONNECTION_ID})
    assert (status, body["code"]) == (404, "CONNECTION_NOT_FOUND")
    assert api.meld.requests == []


def test_meld_refusing_what_the_caller_asked_for_is_422(api: RepairApi):
    api.meld.respond(*START, meld_error(400, "INVALID_INSTITUTION"))
    status, _, body = api.call("POST", "/connections", {"institutionId": "Unknown"})
    assert (status, body["code"]) == (422, "MELD_REJECTED_REQUEST")


def test_meld_down_while_starting_is_503(api: RepairApi):
    api.meld.respond(*START, meld_error(502))
    status, headers, _ = api.call("POST", "/connections", {})
    assert (status, headers["Retry-After"]) == (503, "5")


# --- Notification preferences ------------------------------------------------------------------------------------


def test_preferences_default_until_set_then_round_trip(api: RepairApi):
    status, _, defaults = api.call("GET", "/me/notifications")
    assert status == 200
    assert (defaults["email"], defaults["channels"], defaults["optedOut"], defaults["locale"]) == (
        None,
        ["EMAIL"],
        False,
        None,
    )

    wanted = {
        "email": "customer@example.com",
        "phone": "+14155550123",
        "channels": ["SMS", "EMAIL"],
        "timezone": "Europe/Berlin",
        "quietHours": {"start": "22:00:00", "end": "07:00:00"},
        "optedOut": False,
        "newAccountsOptIn": True,
        "locale": "es-MX",
    }
    assert api.call("PUT", "/me/notifications", wanted)[:1] == (200,)
    assert api.call("GET", "/me/notifications")[2] == wanted
    assert api.call("GET", "/me/notifications", sub=OTHER_CUSTOMER)[2]["email"] is None
    stored = api.preferences.get_preferences(CUSTOMER)
    assert stored is not None
    assert (stored.external_customer_id, stored.updated_at) == (CUSTOMER, NOW)


# --- Bad input: 422 with field-level messages, nothing changed ---------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"phone": "555-0123"}, "phone"),
        ({"channels": ["PIGEON"]}, "channels.0"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"quietHours": {"start": "25:00", "end": "07:00"}}, "quietHours.start"),
        ({"optedOut": "perhaps"}, "optedOut"),
        ({"emial": "typo@example.com"}, "emial"),
        ({"locale": "spanish"}, "locale"),
        ({"locale": "es_MX"}, "locale"),
    ],
)
def test_invalid_preferences_are_422_per_field_and_change_nothing(api: RepairApi, body: dict[str, object], field: str):
    api.call("PUT", "/me/notifications", {"email": "kept@example.com"})
    status, _, answer = api.call("PUT", "/me/notifications", body)
    assert status == 422
    assert answer["code"] == "INVALID_REQUEST"
    assert field in [error["field"] for error in answer["errors"]]
    assert all(error["message"] and error["type"] for error in answer["errors"])
    assert api.call("GET", "/me/notifications")[2]["email"] == "kept@example.com"


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[1, 2]", b'"text"', b"", b"null"],
    ids=["malformed", "array", "string", "empty", "null"],
)
def test_a_body_that_is_not_a_json_object_is_422(api: RepairApi, raw: bytes):
    status, _, answer = api.call("PUT", "/me/notifications", raw_body=raw)
    assert status == 422
    assert answer["code"] == "INVALID_REQUEST"
    assert api.preferences.get_preferences(CUSTOMER) is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"products": ["GOLD"]}, "products.0"),
        ({"products": []}, "products"),
        ({"institutionId": "../admin"}, "institutionId"),
        ({"replacesConnectionId": 42}, "replacesConnectionId"),
        ({"institutionSearchString": "chase"}, "institutionSearchString"),
    ],
)
def test_an_invalid_start_request_is_422_and_calls_nothing(api: RepairApi, body: dict[str, object], field: str):
    status, _, answer = api.call("POST", "/connections", body)
    assert status == 422
    assert field in [error["field"] for error in answer["errors"]]
    assert api.meld.requests == []


@pytest.mark.parametrize("connection_id", ["..", "a b", "x" * 65, "semi;colon"])
def test_a_malformed_connection_id_is_422(api: RepairApi, connection_id: str):
    status, _, answer = api.call("POST", f"/connections/{connection_id}/repair")
    assert status == 422
    assert [error["field"] for error in answer["errors"]] == ["connectionId"]
    assert api.meld.requests == []


def test_an_unknown_route_is_404(api: RepairApi):
    status, _, body = api.call("GET", "/nowhere")
    assert (status, body["code"]) == (404, "ROUTE_NOT_FOUND")


def test_an_unexpected_failure_is_500_without_a_stack_trace(
    api: RepairApi, monkeypatch: pytest.MonkeyPatch, captured_logs: Callable[[], str]
):
    def broken_store(*_: object) -> list[object]:
        raise RuntimeError("the store is on fire")

    monkeypatch.setattr(api.service, "list_connections", broken_store)
    status, _, body = api.call("GET", "/connections")
    assert (status, body) == (500, {"code": "INTERNAL_ERROR", "message": "unexpected error"})
    assert "Traceback" in captured_logs()  # in the log, for us


def test_the_stand_ins_default_answer_is_one_the_real_client_accepts():
    # Every handler test leans on the stand-in: its answer must parse as Meld's does, through the client itself.
    stand_in = MeldStandIn()
    grant = meld_gateway(stand_in).repair("c")
    assert (grant.connection_id, grant.connect_token, grant.widget_url) == ("c", TOKEN, WIDGET_URL)


def test_the_wiring_builds_both_use_cases_from_the_templates_environment(
    aws: LocalResources, monkeypatch: pytest.MonkeyPatch
):
    from connection_repair.platform.settings import RepairApiSettings
    from connection_repair.repair.service import RepairService
    from connection_repair.replacement.service import ConnectionReplacer
    from connection_repair.wiring.repair_api import repair_api_settings, repair_service
    from connection_repair.wiring.replacer import connection_replacer

    monkeypatch.setenv("TABLE_NAME", aws.table_name)
    monkeypatch.setenv("EVENT_BUS_NAME", aws.event_bus_name)
    monkeypatch.setenv("MELD_API_KEY", "test-meld-api-key")
    monkeypatch.setenv("MELD_DEADLINE_SECONDS", "12")
    for factory in (repair_api_settings, repair_service, connection_replacer):
        factory.cache_clear()
    try:
        service = repair_service()
        assert isinstance(service, RepairService)
        assert service.list_connections(CUSTOMER) == []
        assert isinstance(connection_replacer(), ConnectionReplacer)
        # The deadline configured is the one the Meld client works to ...
        client = service._meld._build()._client  # type: ignore[attr-defined]
        assert client._deadline_seconds == 12.0
        # ... and none that could outlast API Gateway's 29 s is accepted.
        with pytest.raises(ValueError, match="MELD_DEADLINE_SECONDS"):
            RepairApiSettings.from_env({"TABLE_NAME": "t", "MELD_DEADLINE_SECONDS": "26"})
    finally:
        for factory in (repair_api_settings, repair_service, connection_replacer):
            factory.cache_clear()
