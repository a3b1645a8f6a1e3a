"""The checks that hold for any running stack, over HTTP and through the operator's tools: a deployed one when
``AWS_SAM_STACK_NAME`` names it (the caller's AWS credentials and region; docs/operations.md, Checking a deployed
stack), else the local stack, so that they are run on every CI run too.

They never need Meld: a webhook is signed here with the stack's own secret. They write one connection and one
customer's preferences under an ``e2e-`` id and delete both afterwards.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from botocore.exceptions import BotoCoreError, ClientError

from connection_repair.adapters.dynamodb.keys import connection_key, event_key, preferences_key
from connection_repair.adapters.secrets import PLACEHOLDER_MARK
from connection_repair.ingestion.signature import sign
from connection_repair.preferences.unsubscribe import unsubscribe_token
from local.make_events import envelope
from ops.inspect import timeline
from ops.replay import main as replay
from ops.stack import DeployedStack, LocalStack, Stack

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Target:
    ops: Stack
    # The public API (Meld's webhook, the unsubscribe links) and the Repair API (None: deployed without JwtIssuer).
    public_url: str
    api_url: str | None
    # What the webhook function verifies signatures over (the WebhookUrl output).
    signed_webhook_url: str

    def http(self, base_url: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=base_url or self.public_url, timeout=30.0, trust_env=False)

    def secret(self, logical_id: str) -> str:
        """The current value of one of the stack's secrets, as its functions read it."""
        value = self.ops.client("secretsmanager").get_secret_value(SecretId=self.ops.physical_id(logical_id))
        document = json.loads(value["SecretString"])
        if document.get(PLACEHOLDER_MARK):
            pytest.fail(f"{logical_id} still holds its generated placeholder: put the real value in first")
        return str(document["current"])

    def item(self, key: dict[str, Any]) -> dict[str, Any] | None:
        found = self.ops.client("dynamodb").get_item(TableName=self.ops.table_name(), Key=key, ConsistentRead=True)
        item: dict[str, Any] | None = found.get("Item")
        return item

    def delete(self, key: dict[str, Any]) -> None:
        self.ops.client("dynamodb").delete_item(TableName=self.ops.table_name(), Key=key)


@pytest.fixture(scope="module")
def target(request: pytest.FixtureRequest) -> Target:
    name = os.environ.get("AWS_SAM_STACK_NAME")
    if name:
        deployed = DeployedStack(name)
        try:
            outputs = deployed.outputs()
        except (BotoCoreError, ClientError) as error:
            pytest.fail(f"cannot read stack {name!r} with these AWS credentials and region: {error}")
        return Target(deployed, outputs["PublicApiUrl"], outputs.get("ApiUrl"), outputs["WebhookUrl"])
    local = request.getfixturevalue("stack")  # the local stack (tests/e2e/conftest.py), started once per session
    config = local.config
    return Target(LocalStack(config), config.api_url, config.api_url, config.signed_webhook_url)


@pytest.fixture
def customer(target: Target) -> Iterator[str]:
    customer = f"e2e-{uuid.uuid4().hex[:12]}"
    yield customer
    target.delete(preferences_key(customer))


def deliver(target: Target, body: dict[str, Any], secret: str) -> httpx.Response:
    raw = json.dumps(body).encode()
    timestamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    headers = {
        "meld-signature": sign(secret, timestamp, target.signed_webhook_url, raw),
        "meld-signature-timestamp": timestamp,
        "content-type": "application/json",
    }
    with target.http() as http:
        return http.post("/webhooks/meld", content=raw, headers=headers)


def test_a_signed_webhook_is_stored_once_a_forged_one_refused_and_the_tools_read_it(
    target: Target, customer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    connection_id, event_id = f"conn-{customer}", f"evt-{customer}"
    payload = {"connectionId": connection_id, "externalCustomerId": customer, "newStatus": "ACTIVE"}
    body = envelope("BANK_LINKING_CONNECTION_STATUS_CHANGE", event_id, datetime.now(UTC).isoformat(), payload)
    try:
        secret = target.secret("MeldWebhookSecret")
        assert deliver(target, body, secret).status_code == 200
        assert deliver(target, body, secret).status_code == 200  # Meld's retry: a duplicate, acknowledged
        forged = deliver(target, body, "not-the-secret")
        assert (forged.status_code, forged.json()["error"]) == (401, "SIGNATURE_MISMATCH")

        stored = target.item(connection_key(connection_id))
        assert stored is not None
        assert (stored["status"]["S"], stored["version"]["N"]) == ("ACTIVE", "1")
        # make inspect and make replay on the same stack
        [line] = [line for line in timeline(target.ops, connection_id) if event_id in line]
        assert line.endswith("BANK_LINKING_CONNECTION_STATUS_CHANGE ACTIVE -> accepted")
        capsys.readouterr()
        assert replay([f"CONNECTION={connection_id}"], target.ops) == 0
        assert capsys.readouterr().out.startswith(f"{connection_id}: unchanged\n")
    finally:
        target.delete(connection_key(connection_id))
        target.delete(event_key(event_id))


def test_the_repair_api_refuses_a_caller_without_a_valid_token(target: Target) -> None:
    if target.api_url is None:
        pytest.skip("this stack was deployed without JwtIssuer: it has no Repair API")
    with target.http(target.api_url) as http:
        assert http.get("/connections").status_code == 401
        assert http.get("/connections", headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401


def test_an_unsubscribe_link_signed_by_the_stack_works_without_signing_in_and_a_forged_one_does_not(
    target: Target, customer: str
) -> None:
    token = unsubscribe_token(target.secret("UnsubscribeSigningSecret"), customer)
    forged = unsubscribe_token("not-the-secret", customer)
    with target.http() as http:
        page = http.get("/unsubscribe", params={"token": token})
        assert (page.status_code, page.headers["content-type"].split(";")[0]) == (200, "text/html")
        assert target.item(preferences_key(customer)) is None  # a GET changes nothing
        assert http.post("/unsubscribe", params={"token": token}).status_code == 200
        assert http.get("/unsubscribe", params={"token": forged}).status_code == 404
    stored = target.item(preferences_key(customer))
    assert stored is not None
    assert stored["optedOut"] == {"BOOL": True}
