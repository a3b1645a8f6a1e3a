"""Meld's envelope: what a connection event says, what a body that is not one is told, what is kept of a body."""

from __future__ import annotations

import json

import pytest

from connection_repair.ingestion.webhook import (
    EventType,
    InvalidWebhook,
    MeldWebhook,
    connection_change,
    parse_webhook,
    stored_body,
)


def webhook(event_type: str, payload: object) -> MeldWebhook:
    return MeldWebhook.model_validate(
        {"eventId": "e", "eventType": event_type, "timestamp": "2026-11-25T10:00:00Z", "payload": payload}
    )


def test_every_field_of_a_status_change_is_read():
    change = connection_change(
        webhook(
            EventType.STATUS_CHANGE,
            {
                "connectionId": "conn-1",
                "customerId": "meld-cust-1",
                "externalCustomerId": "cust-1",
                "institutionId": "inst-1",
                "institutionName": "Chase",
                "newStatus": "RECONNECT_REQUIRED",
                "statusReason": "LOGIN_REQUIRED",
                "oldStatus": "ACTIVE",
            },
        )
    )
    assert change is not None
    assert change.model_dump() == {
        "connection_id": "conn-1",
        "customer_id": "meld-cust-1",
        "external_customer_id": "cust-1",
        "institution_id": "inst-1",
        "institution_name": "Chase",
        "status": "RECONNECT_REQUIRED",
        "status_reason": "LOGIN_REQUIRED",
        "previous_status": "ACTIVE",
        "completed": False,
    }


def test_the_connection_may_be_named_id_and_the_first_non_empty_name_wins():
    change = connection_change(
        webhook(EventType.STATUS_CHANGE, {"id": "conn-2", "oldStatus": "", "previousStatus": "X"})
    )
    assert change is not None
    assert (change.connection_id, change.previous_status) == ("conn-2", "X")
    assert connection_change(webhook(EventType.STATUS_CHANGE, {"connectionId": "", "id": ""})) is None
    # A value that is not a string is not a name
    assert (
        connection_change(webhook(EventType.STATUS_CHANGE, {"connectionId": 7, "id": "conn-3"})).connection_id
        == "conn-3"
    )  # type: ignore[union-attr]


def test_only_a_completed_event_is_a_completion():
    payload = {"connectionId": "conn-1"}
    assert connection_change(webhook(EventType.COMPLETED, payload)).completed is True  # type: ignore[union-attr]
    for other in (EventType.STATUS_CHANGE, EventType.DELETED):
        assert connection_change(webhook(other, payload)).completed is False  # type: ignore[union-attr]


def test_a_deletion_is_the_deleted_status_whatever_the_payload_says():
    change = connection_change(webhook(EventType.DELETED, {"connectionId": "c", "newStatus": "ACTIVE", "reason": "X"}))
    assert change is not None
    assert (change.status, change.status_reason) == ("DELETED", None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe", "body is not valid UTF-8 JSON"),
        (b"{not json", "body is not valid UTF-8 JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b'{"eventType": "X"}', "missing or invalid fields: eventId, timestamp"),
        (
            b'{"eventId": "", "eventType": "X", "timestamp": "yesterday"}',
            "missing or invalid fields: eventId, timestamp",
        ),
    ],
)
def test_a_body_that_is_not_a_meld_event_is_told_exactly_what_is_wrong(body: bytes, message: str):
    with pytest.raises(InvalidWebhook) as refused:
        parse_webhook(body)
    assert str(refused.value) == message


def test_a_redacted_body_is_compact_json():
    raw = json.dumps({"eventId": "e", "payload": {"serviceProviderDetails": {"serviceProvider": "PLAID", "t": "x"}}})
    assert (
        stored_body(raw.encode()) == '{"eventId":"e","payload":{"serviceProviderDetails":{"serviceProvider":"PLAID"}}}'
    )


def test_provider_details_early_in_a_list_are_redacted_whatever_follows():
    raw = json.dumps(
        {"accounts": [{"serviceProviderDetails": {"serviceProvider": "MX", "token": "t"}}, {"name": "savings"}]}
    )
    assert "token" not in stored_body(raw.encode())
    nested = json.dumps({"payload": {"serviceProviderDetails": {"token": "t"}, "other": {"plain": 1}}})
    assert "token" not in stored_body(nested.encode())
