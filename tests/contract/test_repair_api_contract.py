"""The Repair API's contract: docs/openapi.json is what the code generates, every committed event is a valid
HTTP API event, and whatever Meld answers, requests generated against the document (hypothesis) only ever get
documented answers whose bodies match the documented schemas, never a 500. (Requests against the running local stack
with Meld healthy: schemathesis, tests/e2e/test_contract_fuzzing.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.aws_resources import LocalResources
from local.make_openapi import OPENAPI, document
from tests.repair_api_support import (
    CONNECTION_ID,
    CUSTOMER,
    OTHER_CUSTOMER,
    MeldStandIn,
    RepairApi,
    connection,
    install_repair_api,
    meld_error,
)
from tests.support import EVENTS_DIR

SPEC: dict[str, Any] = json.loads(OPENAPI.read_text())
OPERATIONS = [
    (method.upper(), path, operation)
    for path, item in sorted(SPEC["paths"].items())
    for method, operation in sorted(item.items())
]


def test_the_committed_openapi_document_is_what_the_code_generates():
    assert OPENAPI.read_text() == document(), "docs/openapi.json is out of date: run `make openapi` and commit it"


def test_the_reconnect_prompts_types_are_the_documents():
    from local.make_web_types import TYPES, declarations

    expected = declarations(json.loads(OPENAPI.read_text()))
    assert TYPES.read_text() == expected, f"{TYPES.name} is out of date: run `make openapi` and commit it"
    # Every answer the prompt reads is there, with the fields it relies on.
    assert "export interface ConnectionView {" in expected
    assert "  repairPending: boolean;" in expected
    assert 'export type Action = "REPAIR" | "RENEW_ACCESS" | "ADD_ACCOUNTS" | "WAIT"' in expected


def test_the_document_covers_every_route_in_the_template():
    from local.aws_resources import load_template

    function = load_template()["Resources"]["RepairApiFunction"]["Properties"]
    routes = {(event["Properties"]["Method"], event["Properties"]["Path"]) for event in function["Events"].values()}
    assert routes == {(method, path) for method, path, _ in OPERATIONS}


@pytest.mark.parametrize("path", sorted(EVENTS_DIR.glob("repair_api_*.json")), ids=lambda path: path.stem)
def test_every_repair_api_event_is_an_authorized_http_api_event(path: Path):
    event = APIGatewayProxyEventV2Model.model_validate_json(path.read_text())
    assert event.requestContext.authorizer is not None
    assert event.requestContext.authorizer.jwt is not None
    assert event.requestContext.authorizer.jwt.claims["sub"]
    method, _, route = event.routeKey.partition(" ")
    assert route in SPEC["paths"]
    assert method.lower() in SPEC["paths"][route]


# --- Generated requests ------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def body_properties(operation: dict[str, Any]) -> dict[str, Any]:
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    name = schema["$ref"].rsplit("/", 1)[-1]
    properties: dict[str, Any] = SPEC["components"]["schemas"][name]["properties"]
    return properties


@st.composite
def request_bodies(draw: st.DrawFn, operation: dict[str, Any]) -> bytes | None:
    if "requestBody" not in operation:
        return draw(st.none() | st.just(b"{}"))
    # Mostly documented fields with arbitrary values (so validation is exercised field by field), sometimes
    # arbitrary JSON, sometimes bytes that are not JSON at all.
    names = [*sorted(body_properties(operation)), "unknownField"]
    documented = st.dictionaries(st.sampled_from(names), json_values | st.sampled_from(_PLAUSIBLE), max_size=5)
    choice = draw(st.sampled_from(["documented", "json", "bytes"]))
    if choice == "documented":
        return json.dumps(draw(documented)).encode()
    if choice == "json":
        return json.dumps(draw(json_values)).encode()
    return draw(st.binary(max_size=40).filter(_not_json))


_PLAUSIBLE = [
    "customer@example.com",
    "+14155550123",
    ["EMAIL", "SMS"],
    ["BALANCES"],
    "Europe/Berlin",
    {"start": "22:00", "end": "07:00"},
    CONNECTION_ID,
    "Ntj3AwgdridJc2rtfeheku",
]


def _not_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "ignore") == raw.decode("utf-8", "replace")
    return False


connection_ids = st.sampled_from([CONNECTION_ID, "theirs", "missing", "expired"]) | st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=70
).filter(lambda text: "/" not in text and "?" not in text and "#" not in text and "%" not in text)

MELD_ANSWERS = {
    "ok": None,
    "404": meld_error(404, "NOT_FOUND"),
    "409": meld_error(409, "CONFLICT"),
    "429": meld_error(429, "RATE_LIMITED", {"Retry-After": "1"}),
    "500": meld_error(500),
    "401": meld_error(401),
    "invalid-json": httpx.Response(200, content=b"{nope", headers={"content-type": "application/json"}),
}


def response_schema(operation: dict[str, Any], status: int) -> dict[str, Any]:
    documented = operation["responses"]
    assert str(status) in documented, f"{status} is not documented for {operation['operationId']}"
    schema = documented[str(status)]["content"]["application/json"]["schema"]
    return {**schema, "components": SPEC["components"]}


@pytest.fixture
def api(aws: LocalResources, monkeypatch: pytest.MonkeyPatch) -> RepairApi:
    api = install_repair_api(aws.table_name, monkeypatch)
    for item in (
        connection(),
        connection("theirs", customer=OTHER_CUSTOMER),
        connection("expired", status="EXPIRED", reason=None),
    ):
        api.store.save_connection(item, expected_version=None)
    return api


def exercise(
    api: RepairApi, operation: tuple[str, str, dict[str, Any]], connection_id: str, body: bytes | None, sub: str | None
) -> int:
    method, template, spec = operation
    path = template.replace("{connectionId}", connection_id)
    from local.apigw import http_api_event

    headers = {"content-type": "application/json"} if body is not None else {}
    event = http_api_event(
        method,
        path,
        route_key=f"{method} {template}",
        headers=headers,
        body=body,
        path_parameters={"connectionId": connection_id} if "{connectionId}" in template else None,
        jwt_claims={"sub": sub} if sub is not None else None,
    )
    response = api.invoke(event)
    status: int = response["statusCode"]
    answer = json.loads(response["body"])
    jsonschema.validate(answer, response_schema(spec, status), cls=jsonschema.Draft202012Validator)
    if status == 200 and method == "POST":
        assert response["headers"]["Cache-Control"] == "no-store"
    return status


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    operation=st.sampled_from([op for op in OPERATIONS if op[0] == "POST"]),
    data=st.data(),
    meld_answer=st.sampled_from(sorted(MELD_ANSWERS)),
)
def test_whatever_meld_answers_the_api_answers_as_documented_and_never_500(
    api: RepairApi, operation: tuple[str, str, dict[str, Any]], data: st.DataObject, meld_answer: str
):
    stand_in = MeldStandIn()
    answer = MELD_ANSWERS[meld_answer]
    if answer is not None:
        for route in list(stand_in.routes):
            stand_in.respond(*route, answer)
    api.meld.routes.clear()
    api.meld.routes.update(stand_in.routes)
    body = data.draw(request_bodies(operation[2]))
    status = exercise(api, operation, CONNECTION_ID, body, CUSTOMER)
    assert status != 500
