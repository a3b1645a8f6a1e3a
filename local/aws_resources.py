"""Create the stateful resources of template.yaml on an AWS endpoint (moto, in tests and in the local stack).

template.yaml stays the one source of truth: the table's keys and indexes, the bus and the secrets are read from it,
never written down a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, ...) as plain {"Fn": value} mappings."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {suffix: value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open() as stream:
        document: dict[str, Any] = yaml.load(stream, Loader=_CloudFormationLoader)  # noqa: S506 (safe loader subclass)
    return document


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource.get("Properties", {})
        for name, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


@dataclass(frozen=True)
class LocalResources:
    table_name: str
    event_bus_name: str


def table_definition(template: dict[str, Any], logical_id: str = "ConnectionsTable") -> dict[str, Any]:
    """CreateTable arguments for a table of the template (what DynamoDB's API takes, nothing CloudFormation-only)."""
    properties = template["Resources"][logical_id]["Properties"]
    keys = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")
    return {key: properties[key] for key in keys if key in properties}


def create_resources(stack_name: str = "connection-repair-local", **client_args: Any) -> LocalResources:
    """Create the table (with its TTL) and the bus; idempotent, so a restarted local stack keeps its data."""
    template = load_template()
    dynamodb = boto3.client("dynamodb", **client_args)
    events = boto3.client("events", **client_args)

    table_name = f"{stack_name}-connections"
    existing = dynamodb.list_tables()["TableNames"]
    if table_name not in existing:
        dynamodb.create_table(TableName=table_name, **table_definition(template))
        ttl = template["Resources"]["ConnectionsTable"]["Properties"]["TimeToLiveSpecification"]
        dynamodb.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)

    bus_name = f"{stack_name}-events"
    if bus_name not in {bus["Name"] for bus in events.list_event_buses()["EventBuses"]}:
        events.create_event_bus(Name=bus_name)
    return LocalResources(table_name=table_name, event_bus_name=bus_name)
