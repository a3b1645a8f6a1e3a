"""What is kept of a webhook's body: all of it, but the provider's details only as the provider's name."""

from __future__ import annotations

import json

from connection_repair.ingestion.webhook import stored_body


def test_a_body_without_provider_details_is_kept_byte_for_byte():
    raw = b'{ "eventId":"e-1",  "payload": {"connectionId": "c", "note": "caf\\u00e9"} }'
    assert stored_body(raw) == raw.decode()


def test_provider_details_keep_only_the_providers_name_wherever_they_are():
    document = {
        "eventId": "e-1",
        "payload": {
            "connectionId": "c",
            "serviceProviderDetails": {"serviceProvider": "PLAID", "accessToken": "access-sandbox-123"},
            "accounts": [{"serviceProviderDetails": {"serviceProvider": "MX", "userGuid": "USR-1", "token": "t"}}],
        },
    }
    kept = json.loads(stored_body(json.dumps(document).encode()))
    assert kept["payload"]["serviceProviderDetails"] == {"serviceProvider": "PLAID"}
    assert kept["payload"]["accounts"][0]["serviceProviderDetails"] == {"serviceProvider": "MX"}
    assert kept["payload"]["connectionId"] == "c"
    assert kept["eventId"] == "e-1"


def test_provider_details_of_an_unexpected_shape_are_dropped_whole():
    for details in (["access-token"], "access-token", {"accessToken": "t"}, {"serviceProvider": 7, "token": "t"}):
        document = {"eventId": "e-1", "payload": {"serviceProviderDetails": details}}
        kept = json.loads(stored_body(json.dumps(document).encode()))
        assert kept["payload"]["serviceProviderDetails"] == {}
