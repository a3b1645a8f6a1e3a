"""Helpers shared by the tests: the committed events, a Lambda context, and delivery builders."""

from __future__ import annotations

import functools
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from connection_repair.ingestion.service import WebhookDelivery
from connection_repair.ingestion.signature import sign
from local.make_events import LOCAL_WEBHOOK_SECRET, LOCAL_WEBHOOK_URL, envelope
from local.template import load_template

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """One of events/*.json, the same files `sam local invoke -e` takes."""
    document: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    return document


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    # The notifier's timeout (template.yaml) at the start of an invocation; a test may give less.
    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def status_change(
    event_id: str,
    timestamp: str,
    status: str,
    reason: str | None = None,
    *,
    connection_id: str = "conn-1",
    external_customer_id: str | None = "customer-1",
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "connectionId": connection_id,
        "customerId": "meld-customer-1",
        "institutionId": "inst-1",
        "institutionName": "Chase",
        "newStatus": status,
        "statusReason": reason,
        "serviceProviderDetails": {"serviceProvider": "PLAID", "accessToken": "provider-access-token"},
    }
    if external_customer_id:
        payload["externalCustomerId"] = external_customer_id
    return envelope("BANK_LINKING_CONNECTION_STATUS_CHANGE", event_id, timestamp, payload)


def signed_delivery(
    body: dict[str, Any] | bytes,
    *,
    now: datetime,
    secret: str = LOCAL_WEBHOOK_SECRET,
    url: str = LOCAL_WEBHOOK_URL,
    retry_count: int = 0,
) -> WebhookDelivery:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    timestamp = now.isoformat().replace("+00:00", "Z")
    headers = {"meld-signature": sign(secret, timestamp, url, raw), "meld-signature-timestamp": timestamp}
    if retry_count:
        headers["meld-retry-count"] = str(retry_count)
    return WebhookDelivery(headers=headers, raw_body=raw, request_url=url)


def put_connections(client: Any, table_name: str, connections: list[Any]) -> None:
    """Many connections stored as the store writes them, 25 to a request: the bound tests need hundreds."""
    from connection_repair.adapters.dynamodb.connections import connection_item

    items = [{"PutRequest": {"Item": connection_item(connection)}} for connection in connections]
    for start in range(0, len(items), 25):
        client.batch_write_item(RequestItems={table_name: items[start : start + 25]})


def placeholder_secret(resource: str) -> str:
    """A secret (on moto) made as template.yaml makes ``resource`` on a first deploy, before the operator puts the
    real value in: its template with a random value at its generated key. Returns its name."""
    import boto3

    generate = load_template()["Resources"][resource]["Properties"]["GenerateSecretString"]
    value = json.loads(generate["SecretStringTemplate"]) | {generate["GenerateStringKey"]: secrets.token_hex(24)}
    name = f"{resource}-{uuid.uuid4().hex[:8]}"
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(value))
    return name


@functools.cache
def _detail_schema(detail_type: str) -> Any:
    from jsonschema import Draft202012Validator

    from local.make_event_schemas import EVENTS_DIR, file_name

    path = EVENTS_DIR / file_name(detail_type)
    assert path.exists(), f"{detail_type} has no schema in docs/events/: add it to local/make_event_schemas.py"
    return Draft202012Validator(json.loads(path.read_text()))


def conforming(event: dict[str, Any]) -> dict[str, Any]:
    """An EventBridge event read off the bus, once its detail is checked against its published schema."""
    errors = [error.message for error in _detail_schema(event["detail-type"]).iter_errors(event["detail"])]
    assert errors == [], f"{event['detail-type']} does not match docs/events/: {errors}"
    return event
