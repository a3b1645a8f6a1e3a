"""The metrics the code emits, read from its source, are the README's list, and every alarm and dashboard widget of
our namespace names one of them.

A metric is emitted by ``metrics.add_metric(name=...)`` or ``dimensioned_metric(name, ...)`` with its name written
out, or looked up in a module-level ``*_METRICS`` dict of names (so that searching for a name finds where it is
emitted); Powertools adds ``ColdStart`` where a handler captures it. Anything else fails here, so the list cannot
drift from the code.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

from connection_repair.platform.observability import NAMESPACE
from local.template import load_template, resources_of_type

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*sorted((ROOT / "functions").glob("*/app.py")), *sorted((ROOT / "layers" / "common").rglob("*.py"))]


def _named_dicts(tree: ast.Module) -> dict[str, list[str]]:
    """Module-level ``*_METRICS = {...: "Name"}``: the names each holds."""
    found: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id.endswith("_METRICS"):
                    found[target.id] = [ast.literal_eval(value) for value in node.value.values if value is not None]
    return found


def emitted_metrics() -> dict[str, set[str]]:
    """Each metric name the code emits, with the dimensions it is emitted with beyond ``service``."""
    found: dict[str, set[str]] = {}
    unreadable: list[str] = []
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        lookups = _named_dicts(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, (ast.Attribute, ast.Name)):
                continue
            function = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if function == "log_metrics" and any(
                k.arg == "capture_cold_start_metric" and ast.literal_eval(k.value) for k in node.keywords
            ):
                found.setdefault("ColdStart", set()).add("function_name")
                continue
            if function == "add_metric":
                name = next((k.value for k in node.keywords if k.arg == "name"), None)
                dimensions: set[str] = set()
            elif function == "dimensioned_metric" and node.args:
                name = node.args[0]
                dimensions = {k.arg for k in node.keywords if k.arg and k.arg != "unit"}
            else:
                continue
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                names = [name.value]
            elif isinstance(name, ast.Subscript) and isinstance(name.value, ast.Name) and name.value.id in lookups:
                names = lookups[name.value.id]
            else:
                unreadable.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                continue
            for each in names:
                found.setdefault(each, set()).update(dimensions)
    assert unreadable == [], f"metric names that are neither written out nor in a *_METRICS dict: {unreadable}"
    return found


def readme_metrics() -> dict[str, set[str]]:
    """The README's table of metrics: name -> the dimensions it lists."""
    section = (ROOT / "README.md").read_text().split("\n### Metrics\n", 1)[1].split("\n#", 1)[0]
    found: dict[str, set[str]] = {}
    for row in re.findall(r"^\| `(\w+)` \| ([^|]*) \|", section, flags=re.MULTILINE):
        name, dimensions = row
        found[name] = set(re.findall(r"`(\w+)`", dimensions))
    return found


def watched_metrics() -> dict[str, set[str]]:
    """Metric names of our namespace that an alarm or a dashboard widget names, with who names them."""
    template = load_template()
    found: dict[str, set[str]] = {}
    for name, properties in resources_of_type(template, "AWS::CloudWatch::Alarm").items():
        metrics = [properties] if "MetricName" in properties else []
        metrics += [query["MetricStat"]["Metric"] for query in properties.get("Metrics", []) if "MetricStat" in query]
        for metric in metrics:
            if metric["Namespace"] == NAMESPACE:
                found.setdefault(metric["MetricName"], set()).add(name)
    for name, properties in resources_of_type(template, "AWS::CloudWatch::Dashboard").items():
        for widget in dashboard_widgets(properties):
            for line in widget["properties"]["metrics"]:
                if line[0] == NAMESPACE:
                    found.setdefault(line[1], set()).add(name)
                elif isinstance(line[0], dict):
                    search = re.fullmatch(r"SEARCH\('\{(\w+),[^}]*\} MetricName=\"(\w+)\"', .*", line[0]["expression"])
                    assert search, f"{name}: an expression this test cannot read: {line[0]['expression']}"
                    if search[1] == NAMESPACE:
                        found.setdefault(search[2], set()).add(name)
    return found


def dashboard_widgets(properties: dict[str, Any]) -> list[dict[str, Any]]:
    body = properties["DashboardBody"]
    text = body["Fn::Sub"] if isinstance(body, dict) else body
    text = text[0] if isinstance(text, list) else text
    # ${...} substitutions stand for names and ARNs: any string keeps the JSON readable.
    widgets: list[dict[str, Any]] = json.loads(re.sub(r"\$\{[^}]+\}", "x", text))["widgets"]
    return widgets


def test_the_readme_lists_every_metric_the_code_emits_and_no_other() -> None:
    emitted, listed = emitted_metrics(), readme_metrics()

    assert sorted(set(emitted) - set(listed)) == [], "emitted but not in the README's list"
    assert sorted(set(listed) - set(emitted)) == [], "in the README's list but emitted nowhere"
    for name, dimensions in emitted.items():
        assert listed[name] == dimensions, f"{name}: the README lists {listed[name]}, the code emits {dimensions}"


def test_every_alarm_and_dashboard_widget_names_a_metric_the_code_emits() -> None:
    emitted = emitted_metrics()
    watched = watched_metrics()

    assert watched, "the template watches some metric of ours"
    assert {name: sorted(who) for name, who in watched.items() if name not in emitted} == {}


def test_the_dashboard_shows_what_on_call_asked_for() -> None:
    [dashboard] = resources_of_type(load_template(), "AWS::CloudWatch::Dashboard").values()
    lines = [line for widget in dashboard_widgets(dashboard) for line in widget["properties"]["metrics"]]
    shown = {line[1] for line in lines if isinstance(line[0], str)}
    shown |= {
        name
        for line in lines
        if isinstance(line[0], dict)
        for name in re.findall(r'MetricName="(\w+)"', line[0]["expression"])
    }
    assert {
        "WebhooksAccepted",
        "WebhooksRejectedByReason",
        "Duration",
        "OldestPendingOutboxAge",
        "ReconciliationDrift",
        "5xx",
        "Latency",
        "MeldUnavailable",
        "MeldConfigurationErrors",
        "NotificationsSuppressedByReason",
        "NotificationsDeferredByReason",
        "OldestDueMessageAge",
        "ApproximateNumberOfMessagesVisible",
        "ColdStart",
    } <= shown
