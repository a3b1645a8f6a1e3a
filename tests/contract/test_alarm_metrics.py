"""Every alarm in template.yaml watches a metric that a tested flow really emits, with the dimensions it alarms on.

An alarm on a metric nobody emits never fires, and CloudWatch says nothing about it: renaming an emitted metric, or
adding a dimension to it, silently disarms the alarm. For each metric of our namespace that an alarm names, a flow
below runs the real handler into the failure (or the traffic) the alarm is about, and the metrics it printed in
Embedded Metric Format are read back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from connection_repair.platform.observability import NAMESPACE
from functions.notifier import app as notifier_app
from functions.webhook_ingest import app as webhook_app
from local.apigw import http_api_event
from local.aws_resources import LocalResources
from local.make_notifier_events import BROKEN_AT, EPISODE_ID
from local.template import load_template, resources_of_type
from tests.notifier_support import Clock, FlakyChannel, build_notifier
from tests.repair_api_support import MeldStandIn, connection, install_repair_api, meld_error
from tests.support import LambdaContext, load_event, signed_delivery, status_change

AWS_NAMESPACES = {"AWS/Lambda", "AWS/SQS", "AWS/ApiGateway"}


def alarmed_metrics() -> dict[str, dict[str, str]]:
    """Each metric of our namespace that some alarm watches, with the dimensions the alarm names; a metric watched
    for one reason is named ``Metric[Reason]``."""
    found: dict[str, dict[str, str]] = {}
    for name, properties in resources_of_type(load_template(), "AWS::CloudWatch::Alarm").items():
        metrics = [properties] if "MetricName" in properties else []
        metrics += [query["MetricStat"]["Metric"] for query in properties.get("Metrics", []) if "MetricStat" in query]
        assert metrics, f"{name} watches no metric"
        for metric in metrics:
            if metric["Namespace"] in AWS_NAMESPACES:
                continue
            assert metric["Namespace"] == NAMESPACE, f"{name} watches another namespace: {metric['Namespace']}"
            dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            reason = f"[{dimensions['Reason']}]" if "Reason" in dimensions else ""
            found[metric["MetricName"] + reason] = dimensions
    return found


def emitted(output: str) -> dict[str, list[dict[str, str]]]:
    """Metric name -> the dimension sets it was printed with (EMF lines on stdout)."""
    found: dict[str, list[dict[str, str]]] = {}
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == NAMESPACE
            for names in directive["Dimensions"]:
                dimensions = {key: document[key] for key in names}
                for metric in directive["Metrics"]:
                    found.setdefault(metric["Name"], []).append(dimensions)
    return found


def fail(client: Any, operation: str, code: str) -> None:
    """Make every call of ``operation`` on ``client`` fail as AWS would answer it."""
    client.meta.events.register(
        f"before-call.{operation}",
        lambda **_: (SimpleNamespace(status_code=400, headers={}), {"Error": {"Code": code, "Message": "refused"}}),
    )


# --- the flows ------------------------------------------------------------------------------------------------

Flow = Callable[[pytest.FixtureRequest], None]


def _webhook(request: pytest.FixtureRequest, *names: str) -> list[int]:
    request.getfixturevalue("webhook_env")
    return [webhook_app.lambda_handler(load_event(name), LambdaContext())["statusCode"] for name in names]


def webhooks_accepted(request: pytest.FixtureRequest) -> None:
    assert _webhook(request, "webhook_status_change_reconnect_required") == [200]


def webhooks_duplicate(request: pytest.FixtureRequest) -> None:
    assert _webhook(request, "webhook_status_change_reconnect_required", "webhook_duplicate") == [200, 200]


def webhooks_stale(request: pytest.FixtureRequest) -> None:
    statuses = _webhook(request, "webhook_status_change_active", "webhook_status_change_reconnect_required")
    assert statuses == [200, 200]


def webhooks_ignored(request: pytest.FixtureRequest) -> None:
    assert _webhook(request, "webhook_unknown_event_type") == [200]


def unknown_statuses(request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("webhook_env")
    body = status_change("evt-new-status", "2026-11-25T11:00:00Z", "A_STATUS_MELD_ADDED", None)
    delivery = signed_delivery(body, now=datetime.now(UTC))
    event = http_api_event("POST", "/webhooks/meld", headers=dict(delivery.headers), body=delivery.raw_body)
    assert webhook_app.lambda_handler(event, LambdaContext())["statusCode"] == 200


def signature_rejections(request: pytest.FixtureRequest) -> None:
    assert _webhook(request, "webhook_bad_signature") == [401]


def secret_not_configured(request: pytest.FixtureRequest) -> None:
    # A stack deployed, its webhook secret still the placeholder the template generated
    from connection_repair.wiring.webhook import webhook_ingestor
    from tests.support import placeholder_secret

    request.getfixturevalue("webhook_env")
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.delenv("MELD_WEBHOOK_SECRET")
    monkeypatch.setenv("MELD_WEBHOOK_SECRET_NAME", placeholder_secret("MeldWebhookSecret"))
    webhook_ingestor.cache_clear()
    assert _webhook(request, "webhook_status_change_reconnect_required") == [401]


def invalid_bodies(request: pytest.FixtureRequest) -> None:
    # Signed by Meld, but not a webhook this version can read
    request.getfixturevalue("webhook_env")
    delivery = signed_delivery({"eventType": "BANK_LINKING_CONNECTION_STATUS_CHANGE"}, now=datetime.now(UTC))
    event = http_api_event("POST", "/webhooks/meld", headers=dict(delivery.headers), body=delivery.raw_body)
    assert webhook_app.lambda_handler(event, LambdaContext())["statusCode"] == 400


def webhook_errors(request: pytest.FixtureRequest) -> None:
    from connection_repair.wiring.webhook import webhook_ingestor

    request.getfixturevalue("webhook_env")
    fail(webhook_ingestor()._events._store._client, "dynamodb.TransactWriteItems", "ValidationException")  # type: ignore[attr-defined]
    assert _webhook(request, "webhook_status_change_reconnect_required") == [500]


def publish_failures(request: pytest.FixtureRequest) -> None:
    from connection_repair.wiring.webhook import webhook_ingestor

    request.getfixturevalue("webhook_env")
    fail(webhook_ingestor()._events._outbox._publisher._client, "events.PutEvents", "AccessDeniedException")  # type: ignore[attr-defined]
    assert _webhook(request, "webhook_status_change_reconnect_required") == [503]


def _repair_api(request: pytest.FixtureRequest, meld: MeldStandIn | None = None) -> Any:
    aws: LocalResources = request.getfixturevalue("aws")
    api = install_repair_api(aws.table_name, request.getfixturevalue("monkeypatch"), meld)
    api.store.save_connection(connection(), expected_version=None)
    return api


def repair_api_errors(request: pytest.FixtureRequest) -> None:
    api = _repair_api(request)
    fail(api.service._connections._client, "dynamodb.GetItem", "ValidationException")
    assert api.call("POST", f"/connections/{connection().connection_id}/repair")[0] == 500


def meld_configuration_errors(request: pytest.FixtureRequest) -> None:
    meld = MeldStandIn()
    meld.respond("POST", "/bank-linking/connect/repair", meld_error(401, "UNAUTHORIZED"))
    api = _repair_api(request, meld)
    assert api.call("POST", f"/connections/{connection().connection_id}/repair")[0] == 502


def meld_unavailable(request: pytest.FixtureRequest) -> None:
    meld = MeldStandIn()
    meld.respond("POST", "/bank-linking/connect/repair", meld_error(503, "SERVICE_UNAVAILABLE"))
    api = _repair_api(request, meld)
    assert api.call("POST", f"/connections/{connection().connection_id}/repair")[0] == 503


def notification_send_failures(request: pytest.FixtureRequest) -> None:
    aws: LocalResources = request.getfixturevalue("aws")
    rig = build_notifier(aws.table_name, Clock(BROKEN_AT + timedelta(minutes=6)), wrap=lambda c: FlakyChannel(c, 9))
    request.getfixturevalue("monkeypatch").setattr(notifier_app, "notifier", lambda: rig.notifier)
    rig.preferences("customer-123")
    rig.connection("WQ5RitxnrnggqcT8noLoZN", customer="customer-123", episode_id=EPISODE_ID, since=BROKEN_AT)
    result = notifier_app.lambda_handler(load_event("notifier_connection_needs_attention"), LambdaContext())
    assert len(result["batchItemFailures"]) == 1


def oldest_due_message_age(request: pytest.FixtureRequest) -> None:
    # A message due since the episode broke, swept two days later (the notifier was down)
    aws: LocalResources = request.getfixturevalue("aws")
    rig = build_notifier(aws.table_name, Clock(BROKEN_AT))
    request.getfixturevalue("monkeypatch").setattr(notifier_app, "notifier", lambda: rig.notifier)
    rig.preferences("customer-123")
    rig.connection("WQ5RitxnrnggqcT8noLoZN", customer="customer-123", episode_id=EPISODE_ID, since=BROKEN_AT)
    notifier_app.lambda_handler(load_event("notifier_connection_needs_attention"), LambdaContext())
    rig.clock.at(BROKEN_AT + timedelta(days=2))
    assert notifier_app.lambda_handler(load_event("notifier_reminder_sweep"), LambdaContext())["sent"] == 1


def message_template_fallbacks(request: pytest.FixtureRequest) -> None:
    # The deployment's own first message has no link to the app: the project's goes out, counted
    from connection_repair.adapters.templates import DirectoryTemplateSource
    from connection_repair.messages.render import MessageRenderer
    from connection_repair.notify.compose import MessageComposer
    from tests.notifier_support import RECONNECT_URL, SETTINGS_URL

    aws: LocalResources = request.getfixturevalue("aws")
    own = request.getfixturevalue("tmp_path")
    (own / "first_notice.txt").write_text("{{ notices[0].bank }}")
    renderer = MessageRenderer(DirectoryTemplateSource(own))
    composer = MessageComposer(RECONNECT_URL, settings_url=SETTINGS_URL, renderer=renderer)
    rig = build_notifier(aws.table_name, Clock(BROKEN_AT + timedelta(minutes=6)), composer=composer)
    request.getfixturevalue("monkeypatch").setattr(notifier_app, "notifier", lambda: rig.notifier)
    rig.preferences("customer-123")
    rig.connection("WQ5RitxnrnggqcT8noLoZN", customer="customer-123", episode_id=EPISODE_ID, since=BROKEN_AT)
    result = notifier_app.lambda_handler(load_event("notifier_connection_needs_attention"), LambdaContext())
    assert result["batchItemFailures"] == []


def reconciliation_drift(request: pytest.FixtureRequest) -> None:
    from functions.reconciler import app as reconciler_app
    from tests.reconcile_support import install_reconciler, meld_connection, meld_with

    aws: LocalResources = request.getfixturevalue("aws")
    meld = meld_with(meld_connection("adopted-1", "RECONNECT_REQUIRED", "LOGIN_REQUIRED"))
    install_reconciler(aws.table_name, aws.event_bus_name, request.getfixturevalue("monkeypatch"), meld)
    result = reconciler_app.lambda_handler(load_event("reconciler_scheduled"), LambdaContext(remaining_ms=900_000))
    assert result["drift"] == {"UnknownConnection": 1}


def oldest_pending_outbox_age(request: pytest.FixtureRequest) -> None:
    from functions.outbox_sweeper import app as sweeper_app

    aws: LocalResources = request.getfixturevalue("aws")
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("TABLE_NAME", aws.table_name)
    monkeypatch.setenv("EVENT_BUS_NAME", aws.event_bus_name)
    sweeper_app.outbox_sweep.cache_clear()
    result = sweeper_app.lambda_handler(load_event("outbox_sweeper_scheduled"), LambdaContext(remaining_ms=120_000))
    sweeper_app.outbox_sweep.cache_clear()
    assert result["pending"] == 0  # reported on every run, nothing pending or not


FLOWS: dict[str, Flow] = {
    "WebhooksAccepted": webhooks_accepted,
    "WebhooksDuplicate": webhooks_duplicate,
    "WebhooksStale": webhooks_stale,
    "WebhooksIgnored": webhooks_ignored,
    "WebhookSignatureRejections": signature_rejections,
    "WebhooksRejectedByReason[NO_SECRET_CONFIGURED]": secret_not_configured,
    "WebhooksRejectedByReason[INVALID_BODY]": invalid_bodies,
    "MeldUnavailable": meld_unavailable,
    "UnknownConnectionStatuses": unknown_statuses,
    "WebhookErrors": webhook_errors,
    "DownstreamPublishFailures": publish_failures,
    "RepairApiErrors": repair_api_errors,
    "MeldConfigurationErrors": meld_configuration_errors,
    "NotificationSendFailures": notification_send_failures,
    "OldestDueMessageAge": oldest_due_message_age,
    "MessageTemplateFallbacks": message_template_fallbacks,
    "ReconciliationDrift": reconciliation_drift,
    "OldestPendingOutboxAge": oldest_pending_outbox_age,
}


@pytest.fixture
def stdout(capsys: pytest.CaptureFixture[str]) -> Callable[[], str]:
    return lambda: capsys.readouterr().out


def test_the_template_alarms_on_our_metrics_at_all() -> None:
    assert set(alarmed_metrics()) >= {"WebhookErrors", "NotificationSendFailures", "MeldConfigurationErrors"}


@pytest.mark.parametrize(("metric", "dimensions"), sorted(alarmed_metrics().items()), ids=str)
def test_every_alarmed_metric_is_emitted_by_a_tested_flow_with_the_alarms_dimensions(
    metric: str, dimensions: dict[str, str], request: pytest.FixtureRequest, stdout: Callable[[], str]
) -> None:
    flow = FLOWS.get(metric)
    assert flow is not None, f"an alarm watches {metric}: add the flow that emits it to FLOWS"
    stdout()  # what earlier fixtures printed is not the flow's
    flow(request)
    printed = emitted(stdout())
    metric = metric.split("[", maxsplit=1)[0]
    assert metric in printed, f"{flow.__name__} ran, but {metric} was not emitted (emitted: {sorted(printed)})"
    # CloudWatch matches the whole dimension set: the alarm's must be one the metric is emitted with.
    assert dimensions in printed[metric]
