"""The webhook function end to end on moto: the committed events in, HTTP answers, table and bus out."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from connection_repair.adapters.dynamodb.keys import connection_key, event_key
from connection_repair.wiring.webhook import webhook_ingestor
from functions.webhook_ingest import app
from local.apigw import http_api_event
from local.make_events import CONNECTION, LOCAL_WEBHOOK_SECRET, LOCAL_WEBHOOK_URL
from tests.support import LambdaContext, load_event, placeholder_secret, signed_delivery, status_change

CONNECTION_ID = CONNECTION["connectionId"]
pytestmark = pytest.mark.usefixtures("webhook_env")


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = app.lambda_handler(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"]), response.get("headers", {})


def item(table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    return boto3.client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")


def table_items(table: str) -> list[dict[str, Any]]:
    return boto3.client("dynamodb").scan(TableName=table)["Items"]


def with_body(event: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The same signed headers over another body (the signature then no longer matches)."""
    return event | {"body": body.decode(), "isBase64Encoded": False}


def test_reconnect_required_is_stored_with_connection_state_and_announced(webhook_env, downstream):
    status, body, _ = invoke(load_event("webhook_status_change_reconnect_required"))

    assert status == 200
    assert body == {"status": "accepted", "eventId": "evt-status-0002"}
    stored = item(webhook_env.table_name, event_key("evt-status-0002"))
    assert stored is not None
    assert stored["eventType"]["S"] == "BANK_LINKING_CONNECTION_STATUS_CHANGE"
    assert json.loads(stored["rawBody"]["S"])["eventId"] == "evt-status-0002"
    assert "expiresAt" in stored
    assert "pending" not in stored
    connection = item(webhook_env.table_name, connection_key(CONNECTION_ID))
    assert connection is not None
    assert connection["status"]["S"] == "RECONNECT_REQUIRED"
    assert connection["statusReason"]["S"] == "LOGIN_REQUIRED"
    assert connection["action"]["S"] == "REPAIR"
    assert connection["gsi1pk"]["S"] == "CUST#customer-123"

    [announced] = downstream()
    assert announced["detail-type"] == "Connection Needs Attention"
    assert announced["source"] == "connection-repair"
    detail = announced["detail"]
    assert detail["connectionId"] == CONNECTION_ID
    assert detail["externalCustomerId"] == "customer-123"
    assert (detail["status"], detail["statusReason"], detail["action"]) == (
        "RECONNECT_REQUIRED",
        "LOGIN_REQUIRED",
        "REPAIR",
    )
    assert detail["episodeId"]
    assert detail["eventTime"].startswith("2026-11-25T11:30:00")
    assert "serviceProviderDetails" not in json.dumps(announced)


def test_the_full_story_completed_broken_repaired(webhook_env, downstream):
    for name in ("webhook_connection_completed", "webhook_status_change_reconnect_required"):
        assert invoke(load_event(name))[0] == 200
    status, body, _ = invoke(load_event("webhook_status_change_active"))

    assert (status, body["status"]) == (200, "accepted")
    connection = item(webhook_env.table_name, connection_key(CONNECTION_ID))
    assert connection is not None
    assert (connection["status"]["S"], connection["action"]["S"]) == ("ACTIVE", "NONE")
    assert "episodeId" not in connection
    kinds = [event["detail-type"] for event in downstream()]
    assert kinds == ["Connection Needs Attention", "Connection Attention Ended"]


def test_duplicate_delivery_answers_200_and_changes_nothing(webhook_env, downstream):
    invoke(load_event("webhook_status_change_reconnect_required"))
    before = table_items(webhook_env.table_name)
    downstream()

    status, body, _ = invoke(load_event("webhook_duplicate"))

    assert (status, body) == (200, {"status": "duplicate", "eventId": "evt-status-0002"})
    assert table_items(webhook_env.table_name) == before
    assert downstream() == []


def test_stale_event_is_stored_for_audit_but_does_not_change_state(webhook_env, downstream):
    invoke(load_event("webhook_status_change_active"))  # 11:45
    connection_before = item(webhook_env.table_name, connection_key(CONNECTION_ID))

    status, body, _ = invoke(load_event("webhook_status_change_reconnect_required"))  # 11:30, arrives late

    assert (status, body["status"]) == (200, "stale")
    assert item(webhook_env.table_name, event_key("evt-status-0002")) is not None
    assert item(webhook_env.table_name, connection_key(CONNECTION_ID)) == connection_before
    assert [event["detail-type"] for event in downstream()] == []


def test_base64_encoded_body_is_verified_on_the_decoded_bytes(webhook_env):
    event = load_event("webhook_base64_body")
    assert event["isBase64Encoded"] is True

    status, body, _ = invoke(event)

    assert (status, body["status"]) == (200, "accepted")
    assert item(webhook_env.table_name, connection_key(CONNECTION_ID)) is not None


def test_unknown_event_type_is_stored_and_answered_200(webhook_env, downstream):
    status, body, _ = invoke(load_event("webhook_unknown_event_type"))

    assert (status, body) == (200, {"status": "ignored", "eventId": "evt-other-0004"})
    # Meld's retry of it is a duplicate like any other
    assert invoke(load_event("webhook_unknown_event_type"))[1] == {"status": "duplicate", "eventId": "evt-other-0004"}
    assert item(webhook_env.table_name, event_key("evt-other-0004")) is not None
    assert downstream() == []


def test_bad_signature_is_401_with_the_reason_and_nothing_stored(webhook_env):
    status, body, _ = invoke(load_event("webhook_bad_signature"))

    assert status == 401
    assert body == {"error": "SIGNATURE_MISMATCH", "message": "Meld-Signature does not match the request"}
    assert table_items(webhook_env.table_name) == []


@pytest.mark.parametrize(
    ("header", "reason"),
    [("meld-signature", "MISSING_SIGNATURE"), ("meld-signature-timestamp", "MISSING_TIMESTAMP")],
)
def test_missing_signature_headers_are_401(webhook_env, header, reason):
    event = load_event("webhook_status_change_reconnect_required")
    del event["headers"][header]
    status, body, _ = invoke(event)
    assert (status, body["error"]) == (401, reason)
    assert table_items(webhook_env.table_name) == []


def test_old_signature_timestamp_is_401_under_the_default_tolerance(webhook_env, monkeypatch):
    from connection_repair.wiring.webhook import webhook_ingestor

    monkeypatch.delenv("MELD_WEBHOOK_TOLERANCE_SECONDS")  # back to the default 300 s; the fixture was signed earlier
    webhook_ingestor.cache_clear()
    status, body, _ = invoke(load_event("webhook_status_change_reconnect_required"))
    assert (status, body["error"]) == (401, "TIMESTAMP_OUT_OF_TOLERANCE")
    assert table_items(webhook_env.table_name) == []


def test_body_over_256_kib_is_413_and_nothing_stored(webhook_env):
    event = with_body(load_event("webhook_status_change_reconnect_required"), b"x" * (256 * 1024 + 1))
    status, body, _ = invoke(event)
    assert (status, body["error"]) == (413, "PAYLOAD_TOO_LARGE")
    assert table_items(webhook_env.table_name) == []


def _signed_event(raw: bytes) -> dict[str, Any]:
    from local.make_events import signed_event

    event = signed_event({})
    resigned = signed_event(json.loads(raw)) if raw.startswith(b"{") else None
    if resigned is not None:
        return resigned
    # Sign arbitrary bytes the way Meld would.
    from connection_repair.ingestion.signature import sign
    from local.make_events import LOCAL_WEBHOOK_SECRET, LOCAL_WEBHOOK_URL, SIGNED_AT

    event["body"] = base64.b64encode(raw).decode()
    event["isBase64Encoded"] = True
    event["headers"]["meld-signature"] = sign(LOCAL_WEBHOOK_SECRET, SIGNED_AT, LOCAL_WEBHOOK_URL, raw)
    return event


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json at all", "not valid UTF-8 JSON"),
        (b"[1, 2, 3]", "JSON object"),
        (b'{"eventType": "TEST", "timestamp": "2026-11-25T11:00:00Z"}', "eventId"),
        (b'{"eventId": "e-1", "timestamp": "2026-11-25T11:00:00Z"}', "eventType"),
        (b'{"eventId": "e-1", "eventType": "TEST"}', "timestamp"),
        (b'{"eventId": "e-1", "eventType": "TEST", "timestamp": "yesterday"}', "timestamp"),
        (b"\xff\xfe not utf-8", "UTF-8"),
    ],
)
def test_signed_but_invalid_body_is_400_with_a_clear_message(webhook_env, raw, message):
    status, body, _ = invoke(_signed_event(raw))
    assert status == 400
    assert body["error"] == "INVALID_BODY"
    assert message in body["message"]
    assert table_items(webhook_env.table_name) == []


def test_failing_transaction_answers_non_200_and_writes_nothing(webhook_env, downstream):
    from connection_repair.wiring.webhook import webhook_ingestor

    client = webhook_ingestor()._events._store._client  # type: ignore[attr-defined]

    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "TransactWriteItems")

    client.meta.events.register("before-call.dynamodb.TransactWriteItems", refuse)
    status, body, _ = invoke(load_event("webhook_status_change_reconnect_required"))

    assert status == 500
    assert body["error"] == "INTERNAL_ERROR"
    assert "Traceback" not in json.dumps(body)
    assert table_items(webhook_env.table_name) == []
    assert downstream() == []


def test_failing_eventbridge_put_still_delivers_on_meld_retry(webhook_env, downstream):
    from connection_repair.wiring.webhook import webhook_ingestor

    events_client = webhook_ingestor()._events._outbox._publisher._client  # type: ignore[attr-defined]

    def reject_all(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        # A before-call handler that answers stands in for the service's reply: EventBridge accepted nothing.
        entries = json.loads(params["body"])["Entries"]
        parsed = {
            "FailedEntryCount": len(entries),
            "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "injected"} for _ in entries],
        }
        return SimpleNamespace(status_code=200, headers={}), parsed

    events_client.meta.events.register("before-call.events.PutEvents", reject_all)
    status, body, headers = invoke(load_event("webhook_status_change_reconnect_required"))

    # Stored with the downstream event in the outbox; not acknowledged, so Meld will retry.
    assert (status, body["error"]) == (503, "PUBLISH_FAILED")
    assert headers.get("Retry-After") == "60"
    stored = item(webhook_env.table_name, event_key("evt-status-0002"))
    assert stored is not None
    assert "pending" in stored
    assert downstream() == []

    # The bus recovers; Meld's retry (a duplicate) publishes what is pending once the lease has lapsed.
    events_client.meta.events.unregister("before-call.events.PutEvents", reject_all)
    boto3.client("dynamodb").update_item(
        TableName=webhook_env.table_name,
        Key=event_key("evt-status-0002"),
        UpdateExpression="SET leaseUntil = :past",
        ExpressionAttributeValues={":past": {"N": "0"}},
    )
    status, body, _ = invoke(load_event("webhook_duplicate"))

    assert (status, body["status"]) == (200, "duplicate")
    [announced] = downstream()
    assert announced["detail-type"] == "Connection Needs Attention"
    assert "pending" not in (item(webhook_env.table_name, event_key("evt-status-0002")) or {})


def test_logs_never_carry_secrets_signatures_or_provider_details(webhook_env, captured_logs):
    for name in (
        "webhook_connection_completed",
        "webhook_status_change_reconnect_required",
        "webhook_duplicate",
        "webhook_bad_signature",
        "webhook_status_change_active",
    ):
        invoke(load_event(name))
    logged = captured_logs()

    assert "Webhook ingested" in logged  # the logs were captured at all
    for name in ("webhook_status_change_reconnect_required", "webhook_bad_signature"):
        assert load_event(name)["headers"]["meld-signature"] not in logged
    for forbidden in ("local-webhook-secret", "serviceProviderDetails", "provider-secret-ref", "PLAID"):
        assert forbidden not in logged


@pytest.mark.parametrize(
    ("forward", "writes"),
    [("false", ["TransactWriteItems"]), ("true", ["TransactWriteItems", "UpdateItem"])],
    ids=["alone", "forwarded"],
)
def test_an_event_with_nothing_downstream_costs_one_write_request_and_no_read(
    webhook_env, downstream, monkeypatch, forward, writes
):
    from connection_repair.wiring.webhook import webhook_ingestor

    monkeypatch.setenv("FORWARD_MELD_WEBHOOKS", forward)
    webhook_ingestor.cache_clear()
    invoke(load_event("webhook_status_change_reconnect_required"))  # opens the episode (announced)
    downstream()
    episode_before = item(webhook_env.table_name, connection_key(CONNECTION_ID))["episodeId"]  # type: ignore[index]
    calls: list[str] = []
    client = webhook_ingestor()._events._store._client  # type: ignore[attr-defined]
    client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    published: list[str] = []
    bus = webhook_ingestor()._events._outbox._publisher._client  # type: ignore[attr-defined]
    bus.meta.events.register("before-call.events.PutEvents", lambda params, **_: published.append("PutEvents"))

    status, body, _ = invoke(load_event("webhook_status_change_still_broken"))  # another reason, same episode

    assert (status, body["status"]) == (200, "accepted")
    # Forwarded, the webhook's own outbox is cleared once it is on the bus: one more write, still no read.
    assert calls == writes
    assert len(published) == (1 if forward == "true" else 0)
    connection = item(webhook_env.table_name, connection_key(CONNECTION_ID))
    assert connection is not None
    assert (connection["statusReason"]["S"], connection["lastEventId"]["S"]) == ("TOKEN_EXPIRED", "evt-status-0005")
    assert connection["episodeId"] == episode_before
    assert connection["version"]["N"] == "2"
    assert downstream() == []


def test_a_transition_reads_the_connection_from_the_failed_silent_write_not_a_second_read(webhook_env):
    from connection_repair.wiring.webhook import webhook_ingestor

    invoke(load_event("webhook_status_change_reconnect_required"))
    calls: list[str] = []
    client = webhook_ingestor()._events._store._client  # type: ignore[attr-defined]
    client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))

    status, body, _ = invoke(load_event("webhook_status_change_active"))  # ends the episode: downstream is due

    assert (status, body["status"]) == (200, "accepted")
    # silent attempt (refused, returning the item), the real transaction, then clearing the outbox
    assert calls == ["TransactWriteItems", "TransactWriteItems", "UpdateItem"]


def signed_event(body: dict[str, Any], *, url: str, secret: str, domain_name: str) -> dict[str, Any]:
    delivery = signed_delivery(body, now=datetime.now(UTC), secret=secret, url=url)
    return http_api_event(
        "POST",
        "/webhooks/meld",
        headers=dict(delivery.headers),
        body=delivery.raw_body,
        domain_name=domain_name,
    )


def test_without_a_configured_url_the_signature_covers_the_url_the_request_arrived_on(
    webhook_env, monkeypatch: pytest.MonkeyPatch
):
    # SAM passes an empty MeldWebhookUrl as ""; the signed URL is then https://<API's domain><path>.
    monkeypatch.setenv("MELD_WEBHOOK_URL", "")
    webhook_ingestor.cache_clear()
    domain = "abc123.execute-api.us-east-1.amazonaws.com"
    body = status_change("evt-url-1", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED")

    signed_elsewhere = signed_event(body, url=LOCAL_WEBHOOK_URL, secret=LOCAL_WEBHOOK_SECRET, domain_name=domain)
    status, answer, _ = invoke(signed_elsewhere)
    assert (status, answer["error"]) == (401, "SIGNATURE_MISMATCH")

    arrived_on = f"https://{domain}/webhooks/meld"
    status, answer, _ = invoke(signed_event(body, url=arrived_on, secret=LOCAL_WEBHOOK_SECRET, domain_name=domain))
    assert (status, answer) == (200, {"status": "accepted", "eventId": "evt-url-1"})
    # Another host's URL is another URL: what the signature covers is the host too.
    other = signed_event(body, url=arrived_on, secret=LOCAL_WEBHOOK_SECRET, domain_name="evil.example.com")
    assert invoke(other)[0] == 401


def test_a_stack_whose_webhook_secret_is_still_the_placeholder_refuses_as_not_configured_until_it_is_put_in(
    webhook_env, monkeypatch: pytest.MonkeyPatch
):
    from aws_lambda_powertools.utilities.parameters import clear_caches

    name = placeholder_secret("MeldWebhookSecret")
    monkeypatch.delenv("MELD_WEBHOOK_SECRET")
    monkeypatch.setenv("MELD_WEBHOOK_SECRET_NAME", name)
    webhook_ingestor.cache_clear()
    clear_caches()
    body = status_change("evt-placeholder", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    event = signed_event(body, url=LOCAL_WEBHOOK_URL, secret=LOCAL_WEBHOOK_SECRET, domain_name="127.0.0.1:3000")

    # Not a signature mismatch: nothing Meld signs can match a secret nobody gave it
    status, answer, _ = invoke(event)
    assert (status, answer["error"]) == (401, "NO_SECRET_CONFIGURED")

    boto3.client("secretsmanager").put_secret_value(
        SecretId=name, SecretString=json.dumps({"current": LOCAL_WEBHOOK_SECRET, "previous": ""})
    )
    clear_caches()  # as the secret cache's five minutes do
    status, answer, _ = invoke(event)
    assert (status, answer["status"]) == (200, "accepted")


@pytest.mark.parametrize("signer", ["current", "previous"])
def test_during_a_rotation_the_function_accepts_both_configured_secrets(
    webhook_env, monkeypatch: pytest.MonkeyPatch, signer: str
):
    monkeypatch.setenv("MELD_WEBHOOK_SECRET", "whsec-new-current")
    monkeypatch.setenv("MELD_WEBHOOK_SECRET_PREVIOUS", "whsec-old-previous")
    webhook_ingestor.cache_clear()
    secret = {"current": "whsec-new-current", "previous": "whsec-old-previous"}[signer]
    body = status_change(f"evt-rot-{signer}", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED")

    status, answer, _ = invoke(signed_event(body, url=LOCAL_WEBHOOK_URL, secret=secret, domain_name="127.0.0.1:3000"))
    assert (status, answer["status"]) == (200, "accepted")
    retired = signed_event(body, url=LOCAL_WEBHOOK_URL, secret=LOCAL_WEBHOOK_SECRET, domain_name="127.0.0.1:3000")
    assert invoke(retired)[0] == 401


@pytest.mark.parametrize(
    ("domain", "raw_path"),
    [
        ("abc123.execute-api.us-east-1.amazonaws.com", "/prod/webhooks/meld"),  # a named stage
        ("hooks.example.com", "/meld-api/webhooks/meld"),  # a custom domain's API mapping
    ],
)
def test_the_route_is_api_gateways_route_key_not_the_path_it_arrived_on(
    webhook_env, monkeypatch: pytest.MonkeyPatch, domain: str, raw_path: str
):
    # Behind a stage or an API mapping the path carries a prefix; MELD_WEBHOOK_URL names the URL Meld signs.
    public_url = f"https://{domain}{raw_path}"
    monkeypatch.setenv("MELD_WEBHOOK_URL", public_url)
    webhook_ingestor.cache_clear()
    body = status_change("evt-route-1", "2026-11-25T11:00:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    delivery = signed_delivery(body, now=datetime.now(UTC), secret=LOCAL_WEBHOOK_SECRET, url=public_url)
    event = http_api_event(
        "POST",
        raw_path,
        headers=dict(delivery.headers),
        body=delivery.raw_body,
        domain_name=domain,
        route_key="POST /webhooks/meld",
    )
    assert invoke(event)[:2] == (200, {"status": "accepted", "eventId": "evt-route-1"})
    assert invoke(event | {"routeKey": "POST /webhooks/other"})[0] == 404


def test_a_status_meld_does_not_document_is_counted_by_status_for_the_alarm(
    webhook_env, capsys: pytest.CaptureFixture[str]
):
    body = status_change("evt-unknown-1", "2026-11-25T11:00:00Z", "SUSPENDED_BY_BANK", "A_NEW_REASON")
    delivery = signed_delivery(body, now=datetime.now(UTC), secret=LOCAL_WEBHOOK_SECRET, url=LOCAL_WEBHOOK_URL)
    event = http_api_event("POST", "/webhooks/meld", headers=dict(delivery.headers), body=delivery.raw_body)
    assert invoke(event)[:2] == (200, {"status": "accepted", "eventId": "evt-unknown-1"})
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    by_status = [d for d in documents if "UnknownConnectionStatusesByStatus" in d]
    assert [(d["Status"], d["Reason"]) for d in by_status] == [("SUSPENDED_BY_BANK", "A_NEW_REASON")]
    assert any(
        d.get("UnknownConnectionStatuses") == [1.0] or d.get("UnknownConnectionStatuses") == 1.0 for d in documents
    )
    # A documented status is not counted.
    known = status_change("evt-known-1", "2026-11-25T11:05:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    delivery = signed_delivery(known, now=datetime.now(UTC), secret=LOCAL_WEBHOOK_SECRET, url=LOCAL_WEBHOOK_URL)
    invoke(http_api_event("POST", "/webhooks/meld", headers=dict(delivery.headers), body=delivery.raw_body))
    assert "UnknownConnectionStatuses" not in capsys.readouterr().out


def test_an_event_stamped_in_the_far_future_is_accepted_and_counted(webhook_env, capsys: pytest.CaptureFixture[str]):
    body = status_change("evt-2099", "2099-01-01T00:00:00Z", "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    delivery = signed_delivery(body, now=datetime.now(UTC), secret=LOCAL_WEBHOOK_SECRET, url=LOCAL_WEBHOOK_URL)
    event = http_api_event("POST", "/webhooks/meld", headers=dict(delivery.headers), body=delivery.raw_body)
    assert invoke(event)[:2] == (200, {"status": "accepted", "eventId": "evt-2099"})
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any("WebhooksFutureStamped" in document for document in printed)
