"""Meld's webhooks through the local stack over HTTP: simulator → API gateway → webhook function → DynamoDB (moto)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from connection_repair.ingestion.signature import sign
from local.make_events import envelope
from local.meld_simulator.webhooks import iso_timestamp
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e


def _customer() -> str:
    return f"e2e-{uuid.uuid4().hex[:8]}"


def test_a_connection_made_at_meld_is_delivered_and_stored(stack: RunningStack) -> None:
    # Given a customer linking a bank at (simulated) Meld
    with stack.simulator() as sim:
        customer = _customer()
        connection = sim.create_connection(customer, institution_name="Chase")

        # When Meld delivers its webhooks
        attempts = sim.wait_for_deliveries(
            lambda items: (
                sum(1 for item in items if item["connectionId"] == connection["id"] and item["status"] == 200) >= 2
            ),
            timeout=20,
        )

    # Then both were answered 200 and the connection's state is stored
    mine = [item for item in attempts if item["connectionId"] == connection["id"]]
    assert {item["eventType"] for item in mine} == {
        "BANK_LINKING_CONNECTION_COMPLETED",
        "BANK_LINKING_CONNECTION_STATUS_CHANGE",
    }
    assert all(item["status"] == 200 for item in mine)
    stored = stack.store().get_connection(connection["id"])
    assert stored is not None
    assert stored.status == "ACTIVE"
    assert stored.external_customer_id == customer


def test_a_broken_connection_is_stored_as_needing_a_repair(stack: RunningStack) -> None:
    with stack.simulator() as sim:
        connection = sim.create_connection(_customer())
        sim.set_status(connection["id"], "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
        sim.wait_for_deliveries(
            lambda items: (
                sum(1 for item in items if item["connectionId"] == connection["id"] and item["status"] == 200) >= 3
            ),
            timeout=20,
        )

    stored = stack.store().get_connection(connection["id"])
    assert stored is not None
    assert (stored.status, stored.status_reason, stored.action.value) == (
        "RECONNECT_REQUIRED",
        "LOGIN_REQUIRED",
        "REPAIR",
    )


def test_a_webhook_with_a_bad_signature_is_refused_and_nothing_is_stored(stack: RunningStack) -> None:
    # Given a webhook signed with the wrong secret
    connection_id = f"conn-{uuid.uuid4().hex[:12]}"
    event_id = str(uuid.uuid4())
    payload = {"connectionId": connection_id, "externalCustomerId": _customer(), "newStatus": "RECONNECT_REQUIRED"}
    body = json.dumps(
        envelope("BANK_LINKING_CONNECTION_STATUS_CHANGE", event_id, iso_timestamp(datetime.now(UTC)), payload)
    ).encode()
    timestamp = iso_timestamp(datetime.now(UTC))
    signature = sign("not-the-webhook-secret", timestamp, stack.config.webhook_url, body)

    # When it is posted to the API
    with stack.api() as api:
        response = api.post(
            "/webhooks/meld",
            content=body,
            headers={
                "content-type": "application/json",
                "meld-signature": signature,
                "meld-signature-timestamp": timestamp,
            },
        )

    # Then it is refused and neither the event nor the connection exists
    assert response.status_code == 401
    store = stack.store()
    assert store.get_event(event_id) is None
    assert store.get_connection(connection_id) is None


def test_an_unknown_route_is_404_like_api_gateway(stack: RunningStack) -> None:
    with stack.api() as api:
        response = api.get("/no/such/route")
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}
