"""What the fuzzer found at the edges of the Repair API's contract, pinned: bodies that are not UTF-8 or not JSON,
values JSON would coerce, what the contract says of emails and time zones, and API Gateway's own 401."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import ValidationError

from connection_repair.preferences.model import SPECIAL_USE_DOMAINS, TIME_ZONES, NotificationPreferences
from functions.webhook_ingest import app as webhook_app
from local.apigw import http_api_event
from local.aws_resources import LocalResources
from local.make_openapi import OPENAPI
from local.template import Resolver, functions, load_template
from tests.repair_api_support import CUSTOMER, RepairApi, install_repair_api
from tests.support import LambdaContext

SPEC: dict[str, Any] = json.loads(OPENAPI.read_text())
BODY_ROUTES = [("POST", "/connections"), ("PUT", "/me/notifications")]
NOT_UTF8 = [b"\xff\xfe\xfd", b'{"institutionId": "\xff"}', b'{"email": "ada\xc3@example.com"}']


@pytest.fixture
def api(aws: LocalResources, monkeypatch: pytest.MonkeyPatch) -> RepairApi:
    return install_repair_api(aws.table_name, monkeypatch)


def send(api: RepairApi, method: str, path: str, body: bytes, content_type: str = "application/json") -> Any:
    event = http_api_event(
        method,
        path,
        route_key=f"{method} {path}",
        headers={"content-type": content_type},
        body=body,
        jwt_claims={"sub": CUSTOMER},
    )
    return api.invoke(event)


def documented(method: str, path: str, status: int) -> dict[str, Any]:
    schema = SPEC["paths"][path][method.lower()]["responses"][str(status)]["content"]["application/json"]["schema"]
    return {**schema, "components": SPEC["components"]}


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize("body", NOT_UTF8, ids=["bytes", "in-a-value", "broken-sequence"])
def test_a_body_that_is_not_utf8_is_a_422_never_a_500(api: RepairApi, method: str, path: str, body: bytes) -> None:
    # API Gateway base64-encodes a body that is not UTF-8, whatever its content type
    event = http_api_event(
        method,
        path,
        route_key=f"{method} {path}",
        headers={"content-type": "application/json"},
        body=body,
        jwt_claims={"sub": CUSTOMER},
    )
    assert event["isBase64Encoded"] is True
    response = api.invoke(event)
    assert response["statusCode"] == 422
    answer = json.loads(response["body"])
    assert answer["errors"] == [{"field": "body", "message": "the body is not UTF-8 text", "type": "json_invalid"}]
    jsonschema.validate(answer, documented(method, path, 422))
    assert api.preferences.get_preferences(CUSTOMER) is None  # nothing stored


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize(
    "content_type", ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded", "application/xml"]
)
def test_a_body_that_is_not_json_is_a_415(api: RepairApi, method: str, path: str, content_type: str) -> None:
    response = send(api, method, path, b'{"optedOut": true}', content_type)
    assert response["statusCode"] == 415
    answer = json.loads(response["body"])
    assert answer["code"] == "UNSUPPORTED_MEDIA_TYPE"
    jsonschema.validate(answer, documented(method, path, 415))


def test_json_with_a_charset_parameter_is_json(api: RepairApi) -> None:
    response = send(api, "PUT", "/me/notifications", b'{"email": "ada@example.com"}', "application/json; charset=utf-8")
    assert response["statusCode"] == 200


@pytest.mark.parametrize(
    "body",
    [
        {"quietHours": {"start": 0, "end": "07:00"}},
        {"quietHours": {"start": "22:00", "end": 25200.5}},
        {"optedOut": "true"},
        {"optedOut": 1},
        {"newAccountsOptIn": "yes"},
        {"timezone": ""},
        {"timezone": "Mars/Olympus_Mons"},
    ],
    ids=[
        "time-as-number",
        "time-as-float",
        "bool-as-text",
        "bool-as-number",
        "opt-in-as-text",
        "no-zone",
        "no-such-zone",
    ],
)
def test_values_of_another_json_type_than_documented_are_refused(api: RepairApi, body: dict[str, Any]) -> None:
    status, _, answer = api.call("PUT", "/me/notifications", body)
    assert status == 422, answer
    assert api.preferences.get_preferences(CUSTOMER) is None


def test_the_contract_lists_exactly_the_time_zones_that_are_accepted() -> None:
    listed = SPEC["components"]["schemas"]["NotificationPreferences"]["properties"]["timezone"]["enum"]
    assert listed == list(TIME_ZONES)
    assert {"UTC", "Europe/Berlin", "America/New_York"} <= set(listed)
    for zone in ("Europe/Berlin", "UTC"):
        assert NotificationPreferences(timezone=zone).zone().key == zone


def test_the_contract_refuses_the_special_use_domains_the_validation_refuses() -> None:
    email = SPEC["components"]["schemas"]["NotificationPreferences"]["properties"]["email"]["anyOf"][0]
    pattern = re.compile(email["pattern"])
    assert email["format"] == "email"
    assert tuple(SPECIAL_USE_DOMAIN_NAMES) == SPECIAL_USE_DOMAINS  # the model's copy of email-validator's list
    for name in SPECIAL_USE_DOMAIN_NAMES:
        for address in (f"ada@bank.{name}", f"ada@BANK.{name.upper()}"):
            assert not pattern.search(address), address
            with pytest.raises(ValidationError, match="special-use"):
                NotificationPreferences(email=address)
    for address in ("ada@example.com", "ada@testing.io", "ada@local-bank.de"):
        assert pattern.search(address)
        assert NotificationPreferences(email=address).email == address


def test_api_gateways_own_401_is_the_documented_401() -> None:
    # What the JWT authorizer answers, before any function runs (local/gateway.py answers the same), on every route
    # that has it (the unsubscribe link's routes are open: their signed token says whose messages to stop)
    template = load_template()
    open_routes = {
        (route.method.lower(), route.path)
        for spec in functions(template, Resolver(template))
        for route in spec.routes
        if route.authorizer is None
    }
    assert open_routes >= {("get", "/unsubscribe"), ("post", "/unsubscribe")}
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if (method, path) in open_routes:
                assert "401" not in operation["responses"]
                continue
            jsonschema.validate({"message": "Unauthorized"}, documented(method, path, 401) | {})
            assert "401" in operation["responses"]


def test_the_functions_own_401_is_the_documented_401(api: RepairApi) -> None:
    status, _, answer = api.call("GET", "/connections", sub=None)
    assert (status, answer) == (401, {"message": "no customer identity", "code": "UNAUTHENTICATED"})
    jsonschema.validate(answer, documented("get", "/connections", 401))


def test_a_webhook_body_that_is_not_utf8_is_refused_not_a_500(webhook_env: LocalResources) -> None:
    event = http_api_event(
        "POST",
        "/webhooks/meld",
        route_key="POST /webhooks/meld",
        headers={"content-type": "application/json"},
        body=b"\xff\xfe not json",
    )
    assert event["isBase64Encoded"] is True
    assert webhook_app.lambda_handler(event, LambdaContext())["statusCode"] == 401
