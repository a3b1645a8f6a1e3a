"""The bus events' contracts (docs/events/) are what the code generates; what the code publishes is checked against
them wherever a test reads the bus (tests/support.py ``conforming``)."""

from __future__ import annotations

import json

import pytest

from local.make_event_schemas import EVENTS_DIR, schemas
from tests.support import conforming


def test_the_committed_schemas_are_the_generated_ones() -> None:
    generated = schemas()
    committed = {path.name: path.read_text() for path in EVENTS_DIR.glob("*.json")}
    assert sorted(committed) == sorted(generated), "run `make openapi` and commit docs/events/"
    for name, text in generated.items():
        assert committed[name] == text, f"docs/events/{name} is out of date: run `make openapi` and commit it"


def test_every_event_of_ours_carries_its_contracts_version() -> None:
    for name, text in schemas().items():
        if name != "meld-webhook-received.json":  # Meld's envelope, versioned by Meld
            document = json.loads(text)
            assert document["properties"]["version"]["const"] == 1
            assert "version" in document["required"]


def test_a_detail_the_contract_does_not_allow_is_caught() -> None:
    needs_attention = {
        "version": 1,
        "eventId": "evt-1",
        "connectionId": "conn-1",
        "externalCustomerId": "customer-1",
        "institutionId": None,
        "institutionName": None,
        "status": "RECONNECT_REQUIRED",
        "statusReason": "LOGIN_REQUIRED",
        "action": "REPAIR",
        "episodeId": "episode-1",
        "eventTime": "2026-11-25T11:00:00Z",
        "attentionSince": "2026-11-25T11:00:00Z",
    }
    event = {"detail-type": "Connection Needs Attention", "detail": needs_attention}
    assert conforming(event) == event
    with pytest.raises(AssertionError, match="does not match"):
        conforming(event | {"detail": needs_attention | {"action": "PANIC"}})
    with pytest.raises(AssertionError, match="does not match"):
        conforming(event | {"detail": {k: v for k, v in needs_attention.items() if k != "version"}})
    with pytest.raises(AssertionError, match="no schema"):
        conforming({"detail-type": "Connection Repaired", "detail": {}})
