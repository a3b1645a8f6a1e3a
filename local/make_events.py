"""Writes events/webhook_*.json: API Gateway events carrying Meld webhooks signed for the local secret.

Run `python -m local.make_events` after changing a scenario. Signatures are made at SIGNED_AT, so a handler reading
these files needs a tolerance that reaches back to it (tests and env.json set one; see events/README.md).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from connection_repair.ingestion.signature import sign
from connection_repair.preferences.unsubscribe import unsubscribe_token
from local.apigw import http_api_event

EVENTS = Path(__file__).resolve().parent.parent / "events"
LOCAL_WEBHOOK_SECRET = "local-webhook-secret"
LOCAL_WEBHOOK_URL = "http://127.0.0.1:3000/webhooks/meld"
SIGNED_AT = "2026-11-25T12:00:00.000000Z"

CONNECTION = {
    "requestId": "8b4f1f0e3a5c4b7c9d2e6f1a0b3c5d7e",
    "customerId": "WQ5RiwiANC9fxSvhYFzW9r",
    "externalCustomerId": "customer-123",
    "connectionId": "WQ5RitxnrnggqcT8noLoZN",
    "institutionId": "Ntj3AwgdridJc2rtfeheku",
    "institutionName": "Chase",
    "serviceProviderDetails": {"serviceProvider": "PLAID", "serviceProviderConnectionId": "provider-secret-ref"},
}


def envelope(event_type: str, event_id: str, timestamp: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "eventId": event_id,
        "timestamp": timestamp,
        "accountId": "W9kbkRme9VT2iz6qASfAf2",
        "profileId": "WGvFXtXbDoCeWsxUtuixPy",
        "version": "2025-03-04",
        "payload": payload,
    }


def signed_event(
    body: dict[str, Any], *, retry_count: int = 0, secret: str = LOCAL_WEBHOOK_SECRET, base64_body: bool = False
) -> dict[str, Any]:
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = {
        "content-type": "application/json",
        "user-agent": "Meld-Webhooks",
        "meld-signature": sign(secret, SIGNED_AT, LOCAL_WEBHOOK_URL, raw),
        "meld-signature-timestamp": SIGNED_AT,
    }
    if retry_count:
        headers |= {"meld-retry-count": str(retry_count), "meld-retry-reason": "HTTP_500"}
    return http_api_event(
        "POST",
        "/webhooks/meld",
        route_key="POST /webhooks/meld",
        headers=headers,
        body=raw,
        force_base64=base64_body,
        now=datetime.fromisoformat(SIGNED_AT),
        request_id=hashlib.sha256(raw + headers["meld-signature"].encode()).hexdigest()[:32],
    )


def scenarios() -> dict[str, dict[str, Any]]:
    completed = envelope(
        "BANK_LINKING_CONNECTION_COMPLETED", "evt-completed-0001", "2026-11-25T11:00:00.000000Z", CONNECTION
    )
    broken = envelope(
        "BANK_LINKING_CONNECTION_STATUS_CHANGE",
        "evt-status-0002",
        "2026-11-25T11:30:00.329186Z",
        CONNECTION | {"oldStatus": "ACTIVE", "newStatus": "RECONNECT_REQUIRED", "statusReason": "LOGIN_REQUIRED"},
    )
    repaired = envelope(
        "BANK_LINKING_CONNECTION_STATUS_CHANGE",
        "evt-status-0003",
        "2026-11-25T11:45:00.000000Z",
        CONNECTION | {"oldStatus": "RECONNECT_REQUIRED", "newStatus": "ACTIVE", "statusReason": None},
    )
    still_broken = envelope(
        "BANK_LINKING_CONNECTION_STATUS_CHANGE",
        "evt-status-0005",
        "2026-11-25T11:35:00.000000Z",
        CONNECTION
        | {"oldStatus": "RECONNECT_REQUIRED", "newStatus": "RECONNECT_REQUIRED", "statusReason": "TOKEN_EXPIRED"},
    )
    unknown = envelope("PAYMENT_TRANSACTION_SETTLED", "evt-other-0004", "2026-11-25T11:50:00.000000Z", {"id": "tx-1"})
    return {
        "webhook_connection_completed": signed_event(completed),
        "webhook_status_change_reconnect_required": signed_event(broken),
        "webhook_status_change_active": signed_event(repaired),
        "webhook_status_change_still_broken": signed_event(still_broken),
        "webhook_duplicate": signed_event(broken, retry_count=1),
        "webhook_base64_body": signed_event(completed, base64_body=True),
        "webhook_unknown_event_type": signed_event(unknown),
        "webhook_bad_signature": signed_event(broken, secret="not-the-webhook-secret"),
    }


# --- Repair API: HTTP API events as API Gateway sends them after its JWT authorizer accepted the token. ---

API_CUSTOMER = "customer-123"  # the JWT's sub = the externalCustomerId of CONNECTION above
API_ISSUED_AT = "2026-11-25T12:00:00+00:00"
# The template's secret that signs unsubscribe links (locally: "local-<its logical id>").
UNSUBSCRIBE_SECRET = "UnsubscribeSigningSecret"


def api_event(
    method: str,
    route: str,
    path_parameters: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
    *,
    sub: str = API_CUSTOMER,
) -> dict[str, Any]:
    """An authorized Repair API request; ``route`` is the template's path with {placeholders}."""
    path = route.format(**(path_parameters or {}))
    claims = {
        "sub": sub,
        "iss": "https://issuer.example.com/",
        "aud": "connection-repair-app",
        "iat": "1795608000",
        "exp": "1795611600",
        "scope": "openid",
    }
    headers = {"authorization": "Bearer <redacted>", "user-agent": "example-app/1.0"}
    raw = None
    if body is not None:
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers["content-type"] = "application/json"
    return http_api_event(
        method,
        path,
        route_key=f"{method} {route}",
        headers=headers,
        body=raw,
        path_parameters=path_parameters,
        jwt_claims=claims,
        domain_name="api.example.com",
        now=datetime.fromisoformat(API_ISSUED_AT),
        request_id=hashlib.sha256(f"{method} {path}".encode() + (raw or b"")).hexdigest()[:32],
    )


def repair_api_scenarios() -> dict[str, dict[str, Any]]:
    connection: dict[str, str] = {"connectionId": str(CONNECTION["connectionId"])}
    return {
        "repair_api_list_connections": api_event("GET", "/connections"),
        "repair_api_get_connection": api_event("GET", "/connections/{connectionId}", connection),
        "repair_api_repair_connection": api_event("POST", "/connections/{connectionId}/repair", connection),
        "repair_api_repair_other_customer": api_event(
            "POST", "/connections/{connectionId}/repair", connection, sub="someone-else"
        ),
        "repair_api_start_connection": api_event(
            "POST",
            "/connections",
            body={
                "institutionId": CONNECTION["institutionId"],
                "products": ["BALANCES", "TRANSACTIONS"],
                "replacesConnectionId": CONNECTION["connectionId"],
            },
        ),
        "repair_api_get_notifications": api_event("GET", "/me/notifications"),
        "repair_api_put_notifications": api_event(
            "PUT",
            "/me/notifications",
            body={
                "email": "customer@example.com",
                "phone": "+14155550123",
                "channels": ["EMAIL", "SMS"],
                "timezone": "America/New_York",
                "quietHours": {"start": "22:00", "end": "07:00"},
                "optedOut": False,
            },
        ),
    }


def unsubscribe_scenarios() -> dict[str, dict[str, Any]]:
    """An email's unsubscribe link followed (its page), and a mail client's one-click POST (RFC 8058), signed with the
    local stack's UnsubscribeSigningSecret for the customer above."""
    query = {"token": unsubscribe_token(f"local-{UNSUBSCRIBE_SECRET}", API_CUSTOMER)}
    at = datetime.fromisoformat(API_ISSUED_AT)
    one_click = {"content-type": "application/x-www-form-urlencoded", "user-agent": "mail-client/1.0"}
    return {
        "unsubscribe_page": http_api_event(
            "GET", "/unsubscribe", route_key="GET /unsubscribe", query=query, domain_name="api.example.com", now=at
        ),
        "unsubscribe_one_click": http_api_event(
            "POST",
            "/unsubscribe",
            route_key="POST /unsubscribe",
            query=query,
            headers=one_click,
            body=b"List-Unsubscribe=One-Click",
            domain_name="api.example.com",
            now=at,
        ),
    }


def connection_replacer_scenarios() -> dict[str, dict[str, Any]]:
    """What the app's bus delivers to the connection replacer once a replacement completed."""
    replaced = {
        "version": "0",
        "id": "0d3c8f64-1f7e-4c55-9a61-6b1a3f7d2c11",
        "detail-type": "Connection Replaced",
        "source": "connection-repair",
        "account": "123456789012",
        "time": "2026-11-25T12:30:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "connectionId": "WQ5RnewConnectionAfterRepl",
            "replacedConnectionId": CONNECTION["connectionId"],
            "externalCustomerId": API_CUSTOMER,
            "eventTime": "2026-11-25T12:30:00Z",
        },
    }
    return {"connection_replacer_connection_replaced": replaced}


def main() -> None:
    every = scenarios() | repair_api_scenarios() | unsubscribe_scenarios() | connection_replacer_scenarios()
    for name, event in every.items():
        (EVENTS / f"{name}.json").write_text(json.dumps(event, indent=2) + "\n")
        print(f"wrote events/{name}.json")


if __name__ == "__main__":
    main()
