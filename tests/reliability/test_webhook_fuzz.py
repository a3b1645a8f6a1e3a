"""Fuzzing the webhook endpoint: whatever arrives, no 5xx, and nothing stored without a valid signature."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connection_repair.ingestion.signature import sign
from functions.webhook_ingest import app
from local.apigw import http_api_event
from local.make_events import LOCAL_WEBHOOK_SECRET, LOCAL_WEBHOOK_URL, SIGNED_AT
from tests.support import LambdaContext

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "eventId": st.text(max_size=30) | st.integers(),
        "eventType": st.sampled_from(
            ["BANK_LINKING_CONNECTION_STATUS_CHANGE", "BANK_LINKING_CONNECTION_COMPLETED", "TEST", ""]
        )
        | st.text(max_size=10),
        "timestamp": st.sampled_from(["2026-11-25T11:00:00Z", "yesterday", ""]) | st.integers(),
        "payload": json_values
        | st.fixed_dictionaries(
            {"connectionId": st.text(max_size=10)},
            optional={"newStatus": st.text(max_size=20), "externalCustomerId": st.text(max_size=10)},
        ),
    },
)
bodies = st.binary(max_size=300) | envelopes.map(lambda document: json.dumps(document).encode())
header_values = st.text(alphabet=st.characters(codec="ascii", exclude_categories=("Cc",)), max_size=60)
# Well-formed but forged: the right length and encoding, random bytes.
forged_signatures = st.binary(min_size=32, max_size=32).map(lambda raw: base64.urlsafe_b64encode(raw).decode())


def invoke(headers: dict[str, str], body: bytes, *, base64_body: bool) -> int:
    event = http_api_event(
        "POST", "/webhooks/meld", route_key="POST /webhooks/meld", headers=headers, body=body, force_base64=True
    )
    if not base64_body:
        # API Gateway passes text bodies as text; bytes that are not UTF-8 arrive replaced.
        event["body"], event["isBase64Encoded"] = body.decode("utf-8", errors="replace"), False
    response: dict[str, Any] = app.lambda_handler(event, LambdaContext())
    return int(response["statusCode"])


def stored_count(table: str) -> int:
    return int(boto3.client("dynamodb").scan(TableName=table, Select="COUNT")["Count"])


@FUZZ
@given(
    body=bodies,
    signature=header_values
    | st.binary(min_size=32, max_size=32).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
    timestamp=header_values | st.just(SIGNED_AT),
    extra=st.dictionaries(st.sampled_from(["meld-retry-count", "content-type", "x-forwarded-for"]), header_values),
    base64_body=st.booleans(),
)
def test_unsigned_or_forged_deliveries_are_refused_and_store_nothing(
    webhook_env, body, signature, timestamp, extra, base64_body
):
    headers = extra | {"meld-signature": signature, "meld-signature-timestamp": timestamp}
    status = invoke(headers, body, base64_body=base64_body)
    assert status in (401, 413)
    assert stored_count(webhook_env.table_name) == 0


@pytest.fixture
def healthy_meld(webhook_env, monkeypatch):
    """Meld answering the webhook's attribution lookups (404: unknown), so "no 5xx" is about the webhook alone: a
    signed change for a connection we never saw asks Meld whose it is, and Meld being down is a documented 5xx."""
    from connection_repair.adapters.meld.client import MeldClient
    from connection_repair.adapters.meld.gateway import MeldConnectionDirectory
    from connection_repair.wiring import meld as meld_wiring
    from connection_repair.wiring.webhook import webhook_ingestor

    def unknown(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"code": "NOT_FOUND", "message": "no such connection"})

    transport = httpx.MockTransport(unknown)
    monkeypatch.setattr(
        meld_wiring,
        "meld_directory",
        lambda settings: MeldConnectionDirectory(
            MeldClient("https://meld.invalid", lambda: "key", transport=transport)
        ),
    )
    webhook_ingestor.cache_clear()
    return webhook_env


@FUZZ
@given(body=bodies, retry=header_values)
def test_correctly_signed_garbage_never_gives_a_5xx(healthy_meld, body, retry):
    headers = {
        "meld-signature": sign(LOCAL_WEBHOOK_SECRET, SIGNED_AT, LOCAL_WEBHOOK_URL, body),
        "meld-signature-timestamp": SIGNED_AT,
        "meld-retry-count": retry,
    }
    status = invoke(headers, body, base64_body=True)
    assert status in (200, 400)


signature_header_names = st.sampled_from(
    ["meld-signature", "meld-signature-timestamp", "meld-retry-count", "content-type", "x-meld-signature", "signature"]
)


@FUZZ
@given(
    headers=st.dictionaries(signature_header_names | st.text(min_size=1, max_size=20), header_values, max_size=5),
    body=bodies,
    base64_body=st.booleans(),
)
def test_arbitrary_header_sets_without_a_valid_signature_are_refused_and_store_nothing(
    webhook_env, headers, body, base64_body
):
    # Missing, partial or misnamed signature headers: never a 5xx, nothing stored.
    status = invoke(headers, body, base64_body=base64_body)
    assert status in (401, 413)
    assert stored_count(webhook_env.table_name) == 0


@FUZZ
@given(
    body=envelopes.map(lambda document: json.dumps(document).encode()),
    tamper=st.sampled_from(["body", "secret", "url", "timestamp"]),
    data=st.data(),
)
def test_a_signature_made_for_something_else_is_refused_and_stores_nothing(webhook_env, body, tamper, data):
    # A real signature, replayed over another body, or made with another secret, for another URL or timestamp.
    secret, url, timestamp, sent = LOCAL_WEBHOOK_SECRET, LOCAL_WEBHOOK_URL, SIGNED_AT, body
    if tamper == "body":
        sent = data.draw(bodies.filter(lambda other: other != body), label="other body")
    elif tamper == "secret":
        secret = data.draw(st.text(min_size=1, max_size=40).filter(lambda s: s != LOCAL_WEBHOOK_SECRET), label="secret")
    elif tamper == "url":
        url = data.draw(
            st.sampled_from([LOCAL_WEBHOOK_URL + "/", "https://127.0.0.1:3000/webhooks/meld", "http://evil"])
        )
    else:
        timestamp = data.draw(st.sampled_from(["2026-11-25T12:00:00.000001Z", "2026-11-25T12:00:00Z", "0"]))
    headers = {"meld-signature": sign(secret, timestamp, url, body), "meld-signature-timestamp": SIGNED_AT}
    status = invoke(headers, sent, base64_body=True)
    assert status in (401, 413)
    assert stored_count(webhook_env.table_name) == 0
