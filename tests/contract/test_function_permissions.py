"""Each function's IAM policy in template.yaml grants every AWS action its code really makes.

moto does not enforce IAM, so a policy missing an action passes every other test and fails every request in AWS.
Each function's flows run through its real handler and adapters while every AWS call made from the project's code
(or Powertools on its behalf) is recorded; each becomes the IAM action(s) it needs (a transaction needs the actions
of its parts, a query on an index needs the index), and the function's policy must allow it on that resource.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from botocore.client import BaseClient

from connection_repair.domain.incident import IncidentPolicy
from local.aws_resources import LocalResources
from local.make_notifier_events import BROKEN_AT, EPISODE_ID
from local.template import ROOT, load_template
from tests.notifier_support import Clock, attention, build_notifier, repaired
from tests.repair_api_support import CONNECTION_ID, connection, install_repair_api, meld_error
from tests.support import LambdaContext, load_event

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
OURS = (str(ROOT / "layers"), str(ROOT / "functions"), "aws_lambda_powertools")
SERVICE_PREFIX = {"sesv2": "ses", "secretsmanager": "secretsmanager"}
PARTS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
# The SAM policy templates the template uses, and what they allow.
SAM_POLICIES = {
    "EventBridgePutEventsPolicy": ["events:PutEvents"],
    "AWSSecretsManagerGetSecretValuePolicy": ["secretsmanager:GetSecretValue"],
}

Needed = set[tuple[str, str]]  # (IAM action, resource: "table", "index/<name>" or "*")


def needed(service: str, operation: str, params: dict[str, Any]) -> Needed:
    prefix = SERVICE_PREFIX.get(service, service)
    if service != "dynamodb":
        return {(f"{prefix}:{operation}", "*")}
    if operation == "TransactWriteItems":
        return {(f"dynamodb:{PARTS[kind]}", "table") for item in params["TransactItems"] for kind in item}
    if operation == "Query" and "IndexName" in params:
        return {("dynamodb:Query", f"index/{params['IndexName']}")}
    return {(f"dynamodb:{operation}", "table")}


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Needed:
    """Every AWS call the project's code makes while the test runs (the test's own setup calls are not)."""
    calls: Needed = set()
    original = BaseClient._make_api_call

    def record(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        caller = _first_caller_outside_the_sdk()
        if caller.startswith(OURS) or any(part in caller for part in OURS[2:]):
            calls.update(needed(client.meta.service_model.service_name, operation, params))
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    return calls


def _first_caller_outside_the_sdk() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if not any(sdk in name for sdk in ("/botocore/", "/boto3/", "/moto/", "/contextlib.py")):
            return name
        frame = frame.f_back  # type: ignore[assignment]
    return ""


def _resource_kind(resource: Any) -> str:
    text = json.dumps(resource)
    if "/index/" in text:
        return "index/" + text.split("/index/")[1].split('"')[0]
    return "table" if "ConnectionsTable" in text else "*"


def allowed(function: str) -> Needed:
    """What the function's policy allows, as (action, resource kind)."""
    grants: Needed = set()
    for policy in RESOURCES[function]["Properties"].get("Policies", []):
        for name, arguments in policy.items():
            if name in SAM_POLICIES:
                grants.update((action, "*") for action in SAM_POLICIES[name])
                continue
            if name == "Fn::If":
                # A conditional statement: what it grants when the condition holds.
                grants.update(_statements(arguments[1].get("Statement", [])))
                continue
            grants.update(_statements(arguments if name == "Statement" else []))
    return grants


def _statements(statements: list[dict[str, Any]]) -> Needed:
    grants: Needed = set()
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement.get("Resource", statement.get("NotResource", "*"))
        kinds = {_resource_kind(resource) for resource in (resources if isinstance(resources, list) else [resources])}
        grants.update((action, kind) for action in actions for kind in kinds)
    return grants


def missing(function: str, calls: Needed) -> list[tuple[str, str]]:
    grants = allowed(function)
    return sorted(call for call in calls if call not in grants and (call[0], "*") not in grants)


# --- the flows ------------------------------------------------------------------------------------------------


def webhook_flows(request: pytest.FixtureRequest) -> None:
    from functions.webhook_ingest import app

    request.getfixturevalue("webhook_env")
    for name in (
        "webhook_status_change_reconnect_required",
        "webhook_status_change_reconnect_required",  # a duplicate
        "webhook_connection_completed",
        "webhook_status_change_active",
        "webhook_unknown_event_type",
    ):
        assert app.lambda_handler(load_event(name), LambdaContext())["statusCode"] == 200


def repair_api_flows(request: pytest.FixtureRequest) -> None:
    aws: LocalResources = request.getfixturevalue("aws")
    api = install_repair_api(aws.table_name, request.getfixturevalue("monkeypatch"))
    api.store.save_connection(connection(), expected_version=None)
    key = {"Idempotency-Key": "permissions-1"}
    assert api.call("GET", "/connections")[0] == 200
    assert api.call("GET", f"/connections/{CONNECTION_ID}")[0] == 200
    assert api.call("POST", f"/connections/{CONNECTION_ID}/repair", headers=key)[0] == 200
    assert api.call("POST", f"/connections/{CONNECTION_ID}/repair", headers=key)[0] == 200
    assert api.call("POST", "/connections", {"replacesConnectionId": CONNECTION_ID})[0] == 201
    assert api.call("PUT", "/me/notifications", {"email": "ada@example.com"})[0] == 200
    assert api.call("GET", "/me/notifications")[0] == 200
    # A keyed request that fails: its record is removed, so its retry runs again
    api.meld.respond("POST", "/bank-linking/connect/start", meld_error(500))
    assert api.call("POST", "/connections", {}, headers={"Idempotency-Key": "permissions-2"})[0] == 503
    # Erasing the caller: their partition, their connections (GSI1), each connection's events (GSI1)
    assert api.call("DELETE", "/me")[0] == 204


def unsubscribe_flows(request: pytest.FixtureRequest) -> None:
    """The link's page and its POST: the secret read from Secrets Manager, the preferences read and written."""
    import boto3

    from connection_repair.preferences.unsubscribe import unsubscribe_token
    from connection_repair.wiring.unsubscribe import page_settings, preferences_store, unsubscribe_verifier
    from functions.unsubscribe import app
    from local.apigw import http_api_event

    aws: LocalResources = request.getfixturevalue("aws")
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    boto3.client("secretsmanager").create_secret(Name="unsubscribe", SecretString='{"current": "k", "previous": ""}')
    monkeypatch.setenv("TABLE_NAME", aws.table_name)
    monkeypatch.setenv("UNSUBSCRIBE_SECRET_NAME", "unsubscribe")
    monkeypatch.delenv("UNSUBSCRIBE_SECRET", raising=False)
    wiring = (page_settings, unsubscribe_verifier, preferences_store)
    for built in wiring:
        built.cache_clear()
    query = {"token": unsubscribe_token("k", "customer-123")}
    for method in ("GET", "POST"):
        event = http_api_event(method, "/unsubscribe", route_key=f"{method} /unsubscribe", query=query)
        assert app.lambda_handler(event, LambdaContext())["statusCode"] == 200
    for built in wiring:
        built.cache_clear()


def notifier_flows(request: pytest.FixtureRequest) -> None:
    aws: LocalResources = request.getfixturevalue("aws")
    # An incident from the first break (told on the bus), its hold, and the paced send.
    rig = build_notifier(
        aws.table_name,
        Clock(BROKEN_AT + timedelta(minutes=6)),
        incidents=IncidentPolicy(min_connections=1, share_percent=1),
        bus=aws.event_bus_name,
        send_rate=5,
    )
    rig.preferences("customer-123", phone="+14155550123")
    broken = rig.connection("WQ5RitxnrnggqcT8noLoZN", customer="customer-123", episode_id=EPISODE_ID, since=BROKEN_AT)
    rig.notifier.on_needs_attention(attention(broken))
    rig.clock.at(BROKEN_AT + timedelta(days=1, hours=1))
    rig.notifier.sweep()
    rig.repair("WQ5RitxnrnggqcT8noLoZN", customer="customer-123")
    rig.notifier.on_attention_ended(repaired(broken))
    rig.clock.at(BROKEN_AT + timedelta(days=3, hours=1))
    rig.notifier.sweep()


def replacer_flows(request: pytest.FixtureRequest) -> None:
    from connection_repair.domain.bus_events import ConnectionReplaced
    from tests.integration.test_connection_replacement_flow import replacer
    from tests.repair_api_support import MeldStandIn, store_for

    env: LocalResources = request.getfixturevalue("webhook_env")
    store_for(env.table_name).save_connection(connection(), expected_version=None)
    event = ConnectionReplaced(
        connection_id="new-1",
        replaced_connection_id=CONNECTION_ID,
        external_customer_id="customer-1",
        event_time=BROKEN_AT,
    )
    replacer(env.table_name, env.event_bus_name, MeldStandIn()).replace(event)


def reconciler_flows(request: pytest.FixtureRequest) -> None:
    from functions.reconciler import app
    from functions.webhook_ingest import app as webhook_app
    from tests.reconcile_support import install_reconciler, meld_connection, meld_with

    env: LocalResources = request.getfixturevalue("webhook_env")
    # One episode open here that Meld has healed, one broken connection we never heard of.
    assert webhook_app.lambda_handler(load_event("webhook_status_change_reconnect_required"), LambdaContext())
    meld = meld_with(
        meld_connection("WQ5RitxnrnggqcT8noLoZN", "ACTIVE"), meld_connection("adopted-1", "RECONNECT_REQUIRED")
    )
    install_reconciler(env.table_name, env.event_bus_name, request.getfixturevalue("monkeypatch"), meld)
    out_of_time = LambdaContext(remaining_ms=1000)
    assert app.lambda_handler({"mode": "backfill"}, out_of_time)["stopped"] == "TIME_BUDGET"  # stores progress
    assert app.lambda_handler({"mode": "backfill"}, LambdaContext(remaining_ms=900_000))["complete"]
    assert app.lambda_handler(load_event("reconciler_scheduled"), LambdaContext(remaining_ms=900_000))["complete"]


def outbox_sweeper_flows(request: pytest.FixtureRequest) -> None:
    import boto3

    from connection_repair.adapters.dynamodb.events import event_item
    from connection_repair.outbox.ports import StoredEvent
    from functions.outbox_sweeper import app
    from tests.integration.test_outbox_sweep import NOW, announcement

    env: LocalResources = request.getfixturevalue("webhook_env")
    # Written by the test itself (not recorded): an outbox its delivery never published.
    event = StoredEvent(
        event_id="evt-1",
        event_type="BANK_LINKING_CONNECTION_STATUS_CHANGE",
        event_time=NOW,
        connection_id="conn-1",
        received_at=NOW,
        retry_count=0,
        raw_body="{}",
        pending=[announcement("conn-1")],
    )
    item = event_item(event, ttl=timedelta(days=90), lease_until=NOW - timedelta(minutes=1))
    boto3.client("dynamodb").put_item(TableName=env.table_name, Item=item)
    app.outbox_sweep.cache_clear()
    assert app.lambda_handler(load_event("outbox_sweeper_scheduled"), LambdaContext(remaining_ms=120_000))["flushed"]
    app.outbox_sweep.cache_clear()


def contact_feedback_flows(request: pytest.FixtureRequest) -> None:
    from connection_repair.wiring.contact_feedback import feedback_store
    from functions.contact_feedback import app

    env: LocalResources = request.getfixturevalue("webhook_env")
    request.getfixturevalue("monkeypatch").setenv("TABLE_NAME", env.table_name)
    feedback_store.cache_clear()
    assert app.lambda_handler(load_event("contact_feedback_bounce"), LambdaContext())["marked"] == {"BOUNCED": 1}
    feedback_store.cache_clear()


FLOWS: dict[str, Callable[[pytest.FixtureRequest], None]] = {
    "WebhookFunction": webhook_flows,
    "RepairApiFunction": repair_api_flows,
    "NotifierFunction": notifier_flows,
    "ConnectionReplacerFunction": replacer_flows,
    "ReconcilerFunction": reconciler_flows,
    "OutboxSweeperFunction": outbox_sweeper_flows,
    "ContactFeedbackFunction": contact_feedback_flows,
    "UnsubscribeFunction": unsubscribe_flows,
}


def test_every_function_in_the_template_has_its_flows() -> None:
    functions = {name for name, resource in RESOURCES.items() if resource["Type"] == "AWS::Serverless::Function"}
    assert functions == set(FLOWS)


@pytest.mark.parametrize("function", sorted(FLOWS))
def test_the_policy_allows_every_aws_call_the_function_makes(
    function: str, request: pytest.FixtureRequest, recorded: Needed
) -> None:
    FLOWS[function](request)
    assert recorded, f"{function}'s flows made no AWS call: the recorder saw nothing"
    assert missing(function, recorded) == []


def test_a_policy_missing_an_action_is_caught() -> None:
    # The check itself: an action the notifier's policy does not grant is reported
    assert missing("NotifierFunction", {("dynamodb:BatchWriteItem", "table"), ("dynamodb:Query", "index/gsi2")}) == [
        ("dynamodb:BatchWriteItem", "table")
    ]
    assert missing("RepairApiFunction", {("dynamodb:Query", "index/gsi2")}) == [("dynamodb:Query", "index/gsi2")]
