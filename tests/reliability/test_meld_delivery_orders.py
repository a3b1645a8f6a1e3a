"""A repair end to end under Meld's real delivery: the completion and the status change sent with it, stamped in
either order, delivered concurrently (each twice), one of them late. The webhook handler, the table and the bus are
the real ones; Meld is the simulator, which also hands out the repair token the Repair API asks it for."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from connection_repair.adapters.dynamodb.keys import connection_key
from connection_repair.adapters.meld.client import MeldClient
from connection_repair.adapters.meld.gateway import MeldConnectGateway
from connection_repair.repair.service import RepairService
from local.aws_resources import LocalResources
from local.meld_simulator.client import SimulatorClient
from tests.meld_to_webhook import WebhookReceiver, meld_delivering_to_the_webhook
from tests.repair_api_support import CUSTOMER, RepairApi, install_repair_api

SIM_KEY = "delivery-orders-meld-key"
COMPLETED = "BANK_LINKING_CONNECTION_COMPLETED"
STATUS_CHANGE = "BANK_LINKING_CONNECTION_STATUS_CHANGE"


@dataclass
class Rig:
    sim: SimulatorClient
    api: RepairApi
    receiver: WebhookReceiver
    table: str

    def stored(self, connection_id: str) -> dict[str, Any]:
        item = boto3.client("dynamodb").get_item(
            TableName=self.table, Key=connection_key(connection_id), ConsistentRead=True
        )["Item"]
        return {name: next(iter(value.values())) for name, value in item.items()}


@pytest.fixture
def rig(request: pytest.FixtureRequest, webhook_env: LocalResources, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    """The simulator delivering as ``request.param`` (SimulatorConfig's delivery options) says, concurrently."""
    from functions.repair_api import app

    delivering = meld_delivering_to_the_webhook(monkeypatch, SIM_KEY, concurrent=True, **request.param)
    with delivering as (simulator, sim, receiver):
        api = install_repair_api(webhook_env.table_name, monkeypatch)
        client = MeldClient(simulator.base_url, lambda: SIM_KEY, timeout=2.0, deadline_seconds=5.0)
        service = RepairService(connections=api.store, preferences=api.preferences, meld=MeldConnectGateway(client))
        monkeypatch.setattr(app, "repair_service", lambda: service)
        yield Rig(sim, api, receiver, webhook_env.table_name)
        client.close()


ORDERS = {
    "completion stamped first, status late": ("before", {STATUS_CHANGE: 0.3}),
    "completion stamped first, completion late": ("before", {COMPLETED: 0.3}),
    "completion stamped last, status late": ("after", {STATUS_CHANGE: 0.3}),
    "completion stamped last, completion late": ("after", {COMPLETED: 0.3}),
}
DELIVERIES = [
    {"completed_stamped": stamped, "delivery_delays": delays, "duplicate_deliveries": 1}
    for stamped, delays in ORDERS.values()
]


@pytest.mark.parametrize("outcome", ["SUCCESS", "FAIL"])
@pytest.mark.parametrize("rig", DELIVERIES, ids=list(ORDERS), indirect=True)
def test_a_repair_ends_in_the_same_state_whatever_meld_s_delivery_order(
    rig: Rig, downstream: Callable[[], list[dict[str, Any]]], outcome: str
) -> None:
    # Given a linked connection that broke, and a repair token the customer got from the Repair API
    created = rig.sim.create_connection(CUSTOMER, institution_name="Chase")
    rig.sim.wait_until_idle(timeout=10)
    rig.sim.set_status(created["id"], "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    rig.sim.wait_until_idle(timeout=10)
    assert [event["detail-type"] for event in downstream()] == ["Connection Needs Attention"]
    status, _, body = rig.api.call("POST", f"/connections/{created['id']}/repair")
    assert status == 200

    # When the customer finishes the widget, and Meld delivers what it sends in its own order
    rig.sim.complete_widget(body["connectToken"], outcome=outcome)
    rig.sim.wait_until_idle(timeout=10)

    # Then every delivery was acknowledged, and the connection is as Meld's status says
    assert set(rig.receiver.answers) == {200}
    state = rig.stored(created["id"])
    announced = [event["detail-type"] for event in downstream()]
    if outcome == "SUCCESS":
        assert (state["status"], state["action"], state.get("failedRepairs")) == ("ACTIVE", "NONE", "0")
        assert "episodeId" not in state
        assert announced == ["Connection Attention Ended"]
    else:
        # Still broken: one failed repair counted (not zero, not two), the customer still asked to repair
        assert (state["status"], state["statusReason"], state["action"]) == (
            "RECONNECT_REQUIRED",
            "REPAIRING_INSTITUTION",  # the simulator's reason for a provider that failed
            "REPAIR",
        )
        assert (state["failedRepairs"], state["repairPending"]) == ("1", False)
        assert "completedAt" not in state
        assert announced == []
