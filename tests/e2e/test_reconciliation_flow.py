"""Webhooks Meld never delivered, made good by the reconciler, end to end over HTTP against the local stack.

The simulator loses webhooks on request (`drop`); the stack's scheduler runs the reconciler every second; a backfill
goes through the stack's Lambda Invoke API as `make backfill` sends it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from local.outbox import sent_emails
from local.template import ROOT, Resolver, load_template, resources_of_type
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e


def wait_for[T](check: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while (found := check()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return found


class Customer:
    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.id = f"e2e-{uuid.uuid4().hex[:8]}"
        self.email = f"{self.id}@example.com"
        self.headers = {"Authorization": f"Bearer {stack.token(self.id)}"}

    def get(self, path: str) -> Any:
        with self.stack.api() as api:
            response = api.get(path, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def save_email(self) -> None:
        with self.stack.api() as api:
            body = {"email": self.email, "channels": ["EMAIL"]}
            assert api.put("/me/notifications", json=body, headers=self.headers).status_code == 200

    def action_becomes(self, connection_id: str, action: str) -> dict[str, Any]:
        def seen() -> dict[str, Any] | None:
            answer: dict[str, Any] = self.get(f"/connections/{connection_id}")
            return answer if answer["action"] == action else None

        return wait_for(seen, f"{connection_id} to ask for {action}")

    def emails(self) -> list[str]:
        return [item.subject for item in sent_emails(self.stack.config.aws_url) if self.email in item.recipients]


def delivered(stack: RunningStack, connection_id: str, count: int) -> None:
    with stack.simulator() as sim:
        sim.wait_for_deliveries(
            lambda items: sum(1 for i in items if i["connectionId"] == connection_id and i["status"] == 200) >= count,
            timeout=20,
        )


def lose_next_webhooks(stack: RunningStack, count: int, change: Callable[[Any], Any]) -> Any:
    with stack.simulator() as sim:
        sim.add_fault("webhooks", "drop", count=count)
        return change(sim)


def test_a_break_whose_webhook_was_lost_reaches_the_api_and_the_customer(stack: RunningStack) -> None:
    customer = Customer(stack)
    customer.save_email()
    with stack.simulator() as sim:
        connection_id = sim.create_connection(customer.id, institution_name="Chase")["id"]
    delivered(stack, connection_id, 2)

    lose_next_webhooks(stack, 1, lambda sim: sim.set_status(connection_id, "RECONNECT_REQUIRED", "LOGIN_REQUIRED"))

    with stack.simulator() as sim:
        lost = [d for d in sim.deliveries() if d["connectionId"] == connection_id and d.get("dropped")]
    assert [d["eventType"] for d in lost] == ["BANK_LINKING_CONNECTION_STATUS_CHANGE"]
    seen = customer.action_becomes(connection_id, "REPAIR")
    assert seen["status"] == "RECONNECT_REQUIRED"
    assert len(wait_for(lambda: customer.emails() or None, "the email")) == 1


def test_a_repair_whose_webhook_was_lost_ends_the_episode_and_its_reminders(stack: RunningStack) -> None:
    customer = Customer(stack)
    with stack.simulator() as sim:
        connection_id = sim.create_connection(customer.id, institution_name="Chase")["id"]
        sim.set_status(connection_id, "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    delivered(stack, connection_id, 3)
    customer.action_becomes(connection_id, "REPAIR")
    notice = episode_notice(stack, customer.id)
    assert "closed" not in notice

    lose_next_webhooks(stack, 1, lambda sim: sim.set_status(connection_id, "ACTIVE"))

    assert customer.action_becomes(connection_id, "NONE")["status"] == "ACTIVE"

    def ended() -> dict[str, Any] | None:
        notice = episode_notice(stack, customer.id)
        return notice if "closed" in notice else None

    closed = wait_for(ended, "the episode to end")
    assert closed["resolution"]["S"] == "REPAIRED"
    assert "gsi2pk" not in closed  # no reminder is due any more


def episode_notice(stack: RunningStack, customer: str) -> dict[str, Any]:
    template = load_template()
    (table,) = resources_of_type(template, "AWS::DynamoDB::Table")
    name = Resolver(template, stack_name=stack.config.stack_name).physical_name(table)
    dynamodb = boto3.client("dynamodb", **stack.config.aws_client_args())
    items = dynamodb.query(
        TableName=name,
        KeyConditionExpression="pk = :customer AND begins_with(sk, :notice)",
        ExpressionAttributeValues={":customer": {"S": f"CUST#{customer}"}, ":notice": {"S": "NOTIFY#EPISODE#"}},
        ConsistentRead=True,
    )["Items"]
    assert len(items) == 1, items
    return dict(items[0])


def test_make_backfill_imports_connections_linked_before_the_stack_knew(stack: RunningStack) -> None:
    customer = Customer(stack)
    created = lose_next_webhooks(stack, 2, lambda sim: sim.create_connection(customer.id, institution_name="Chase"))
    time.sleep(1.5)  # a scheduled drift run or two: an ACTIVE connection is not drift, it stays unknown
    assert customer.get("/connections")["connections"] == []

    environment = os.environ | {"LOCAL_LAMBDA_PORT": str(stack.config.lambda_port)}
    backfill = subprocess.run(
        [sys.executable, "-m", "local.invoke", "ReconcilerFunction", '{"mode": "backfill"}'],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert backfill.returncode == 0, backfill.stderr
    answer = json.loads(backfill.stdout)
    assert (answer["mode"], answer["complete"]) == ("backfill", True)
    assert answer["imported"] >= 1
    (listed,) = customer.get("/connections")["connections"]
    assert (listed["connectionId"], listed["status"], listed["action"]) == (created["id"], "ACTIVE", "NONE")


def test_the_invoke_api_answers_as_lambda_does(stack: RunningStack) -> None:
    client = stack.lambda_client()

    refused = client.invoke(FunctionName="ReconcilerFunction", Payload=b'{"mode": "everything"}')
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="NoSuchFunction", Payload=b"{}")

    assert refused["FunctionError"] == "Unhandled"
    error = json.loads(refused["Payload"].read())
    assert error["errorType"] == "InvalidRequest"
    assert 'mode must be one of "drift", "backfill"' in error["errorMessage"]
