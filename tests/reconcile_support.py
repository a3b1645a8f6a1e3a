"""The reconciler's real wiring on moto, with Meld's listing answered by a stand-in."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connection_repair.adapters.meld.client import MeldClient
from connection_repair.wiring import reconciler as wiring
from tests.repair_api_support import MeldStandIn, meld_json


def meld_connection(connection_id: str, status: str, reason: str | None = None, **extra: Any) -> dict[str, Any]:
    """A connection as Meld's API answers it."""
    return {
        "id": connection_id,
        "key": f"key-{connection_id}",
        "customerId": "meld-customer-1",
        "externalCustomerId": "customer-123",
        "institutionId": "Ntj3AwgdridJc2rtfeheku",
        "institutionName": "Chase",
        "status": status,
        "statusReason": reason,
        **extra,
    }


def meld_with(*connections: dict[str, Any]) -> MeldStandIn:
    """Meld holding ``connections``: its listing (by status) and each connection by id."""
    meld = MeldStandIn()

    def listing(request: httpx.Request) -> httpx.Response:
        statuses = request.url.params.get("statuses")
        wanted = set(statuses.split(",")) if statuses else None
        found = [c for c in connections if wanted is None or c["status"] in wanted]
        return meld_json(200, {"connections": found, "count": len(found), "remaining": 0})

    meld.respond("GET", "/bank-linking/connections", listing)
    for connection in connections:
        meld.respond("GET", f"/bank-linking/connections/{connection['id']}", meld_json(200, connection))
    return meld


def install_reconciler(table_name: str, bus_name: str, monkeypatch: pytest.MonkeyPatch, meld: MeldStandIn) -> None:
    """The reconciler's environment as template.yaml gives it, its Meld calls answered by ``meld``."""
    monkeypatch.setenv("TABLE_NAME", table_name)
    monkeypatch.setenv("EVENT_BUS_NAME", bus_name)
    monkeypatch.setenv("MELD_API_KEY", "test-meld-api-key")

    def client(_settings: object, **_limits: object) -> MeldClient:
        return MeldClient(
            "https://meld.invalid",
            lambda: "test-meld-api-key",
            transport=httpx.MockTransport(meld),
            sleep=lambda _seconds: None,
        )

    monkeypatch.setattr(wiring, "meld_client", client)
    # Built afresh here; whoever runs the real wiring next clears it again (tests/integration/test_reconciliation.py).
    wiring.reconciler.cache_clear()
