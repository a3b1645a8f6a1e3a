"""Create the stateful resources of template.yaml on an AWS endpoint (moto, in tests and in the local stack).

template.yaml stays the one source of truth: tables, buses, secrets, queues, topics, SES identities and the rules of
the functions' EventBridge events are read from it, never written down a second time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import boto3

from local.template import (
    TEMPLATE,
    FunctionSpec,
    Resolver,
    functions,
    load_template,
    resources_of_type,
    secret_string_shape,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["TEMPLATE", "LocalResources", "Provisioned", "create_resources", "load_template", "provision"]

# Local values of the template's secrets, in the JSON shape each secret's GenerateSecretString describes. The
# simulator uses the same defaults; other secrets get "local-<LogicalId>".
LOCAL_SECRET_VALUES = {"MeldWebhookSecret": "local-webhook-secret", "MeldApiKeySecret": "local-meld-api-key"}
# An address alone or inside "Name <address>".
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


@dataclass(frozen=True)
class LocalResources:
    table_name: str
    event_bus_name: str


@dataclass(frozen=True)
class Provisioned:
    resolver: Resolver
    functions: list[FunctionSpec]
    # One queue per function that rules target directly: its rules deliver there, the local poller reads it.
    rule_queues: dict[str, str]
    email_identities: list[str]


def table_definition(template: Mapping[str, Any], logical_id: str = "ConnectionsTable") -> dict[str, Any]:
    """CreateTable arguments for a table of the template (what DynamoDB's API takes, nothing CloudFormation-only)."""
    properties = template["Resources"][logical_id]["Properties"]
    keys = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode", "StreamSpecification")
    return {key: properties[key] for key in keys if key in properties}


def create_resources(stack_name: str = "connection-repair-local", **client_args: Any) -> LocalResources:
    """Only the table(s) and bus(es): what the handler tests need. Idempotent."""
    resolver = Resolver(load_template(), stack_name=stack_name)
    tables = _create_tables(resolver, **client_args)
    buses = _create_buses(resolver, **client_args)
    return LocalResources(table_name=tables[0], event_bus_name=buses[0])


def provision(resolver: Resolver, secret_values: Mapping[str, str] | None = None, **client_args: Any) -> Provisioned:
    """Every stateful resource of the template, then the rules of the functions' events. Idempotent.

    ``resolver`` learns each created resource's name and ARN, so the functions' environments resolve to them.
    """
    _create_tables(resolver, **client_args)
    _create_buses(resolver, **client_args)
    _create_secrets(resolver, {**LOCAL_SECRET_VALUES, **(secret_values or {})}, **client_args)
    sqs = boto3.client("sqs", **client_args)
    _create_queues(resolver, sqs)
    _create_topics(resolver, **client_args)
    specs = functions(resolver.template, resolver)
    rule_queues = _create_rules(resolver, specs, sqs, **client_args)
    identities = _create_email_identities(resolver, specs, **client_args)
    return Provisioned(resolver=resolver, functions=specs, rule_queues=rule_queues, email_identities=identities)


def _create_tables(resolver: Resolver, **client_args: Any) -> list[str]:
    dynamodb = boto3.client("dynamodb", **client_args)
    names: list[str] = []
    for logical_id, properties in resources_of_type(resolver.template, "AWS::DynamoDB::Table").items():
        name = resolver.physical_name(logical_id)
        if name not in dynamodb.list_tables()["TableNames"]:
            dynamodb.create_table(TableName=name, **resolver.resolve(table_definition(resolver.template, logical_id)))
            ttl = properties.get("TimeToLiveSpecification")
            if ttl:
                dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=resolver.resolve(ttl))
        table = dynamodb.describe_table(TableName=name)["Table"]
        resolver.refs[logical_id] = name
        resolver.attributes[f"{logical_id}.Arn"] = table["TableArn"]
        if "LatestStreamArn" in table:
            resolver.attributes[f"{logical_id}.StreamArn"] = table["LatestStreamArn"]
        names.append(name)
    return names


def _create_buses(resolver: Resolver, **client_args: Any) -> list[str]:
    events = boto3.client("events", **client_args)
    names: list[str] = []
    for logical_id in resources_of_type(resolver.template, "AWS::Events::EventBus"):
        name = resolver.physical_name(logical_id)
        existing = {bus["Name"]: bus["Arn"] for bus in events.list_event_buses()["EventBuses"]}
        arn = existing.get(name) or events.create_event_bus(Name=name)["EventBusArn"]
        resolver.refs[logical_id] = name
        resolver.attributes[f"{logical_id}.Arn"] = arn
        resolver.attributes[f"{logical_id}.Name"] = name
        names.append(name)
    return names


def _create_secrets(resolver: Resolver, values: Mapping[str, str], **client_args: Any) -> None:
    secrets = boto3.client("secretsmanager", **client_args)
    for logical_id, properties in resources_of_type(resolver.template, "AWS::SecretsManager::Secret").items():
        name = resolver.physical_name(logical_id)
        value = secret_string_shape(properties, values.get(logical_id, f"local-{logical_id}"))
        try:
            arn = secrets.create_secret(Name=name, SecretString=value)["ARN"]
        except secrets.exceptions.ResourceExistsException:
            arn = secrets.put_secret_value(SecretId=name, SecretString=value)["ARN"]
        # Ref of a secret is its ARN; the functions read the secret by it.
        resolver.refs[logical_id] = arn
        resolver.attributes[f"{logical_id}.Id"] = arn


def _create_queues(resolver: Resolver, sqs: SQSClient) -> None:
    queues = resources_of_type(resolver.template, "AWS::SQS::Queue")
    redrives: dict[str, dict[str, str]] = {}
    for logical_id, properties in queues.items():
        name = resolver.physical_name(logical_id)
        if properties.get("FifoQueue") and not name.endswith(".fifo"):
            name += ".fifo"
        attributes = {
            key: _attribute(resolver.resolve(value))
            for key, value in properties.items()
            if key not in ("QueueName", "Tags", "RedrivePolicy", "RedriveAllowPolicy")
        }
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
        resolver.refs[logical_id] = url
        resolver.attributes[f"{logical_id}.QueueUrl"] = url
        resolver.attributes[f"{logical_id}.QueueName"] = name
        resolver.attributes[f"{logical_id}.Arn"] = queue_arn(sqs, url)
        redrives[url] = {key: properties[key] for key in ("RedrivePolicy", "RedriveAllowPolicy") if key in properties}
    # Second pass: a redrive policy names another queue's ARN, known only once every queue exists.
    for url, policies in redrives.items():
        if policies:
            attributes = {key: _attribute(resolver.resolve(value)) for key, value in policies.items()}
            sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)  # type: ignore[arg-type]


def _attribute(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def queue_arn(sqs: SQSClient, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _create_topics(resolver: Resolver, **client_args: Any) -> None:
    sns = boto3.client("sns", **client_args)
    for logical_id in resources_of_type(resolver.template, "AWS::SNS::Topic"):
        name = resolver.physical_name(logical_id)
        arn = sns.create_topic(Name=name)["TopicArn"]
        resolver.refs[logical_id] = arn
        resolver.attributes[f"{logical_id}.TopicArn"] = arn
        resolver.attributes[f"{logical_id}.TopicName"] = name


def _create_rules(resolver: Resolver, specs: list[FunctionSpec], sqs: SQSClient, **client_args: Any) -> dict[str, str]:
    events = boto3.client("events", **client_args)
    queues: dict[str, str] = {}
    arns: dict[str, str] = {}
    for spec in specs:
        for rule in spec.rules:
            name = rule.name
            state: Literal["ENABLED", "DISABLED"] = "ENABLED" if rule.enabled else "DISABLED"
            if rule.kind == "schedule":
                # moto keeps but never fires schedules; the local scheduler does (every LOCAL_SWEEP_SECONDS).
                events.put_rule(Name=name, ScheduleExpression=str(rule.schedule), State=state)
            else:
                events.put_rule(
                    Name=name, EventBusName=rule.bus, EventPattern=json.dumps(rule.pattern or {}), State=state
                )
            if rule.queue is not None:
                arn = resolver.attributes[f"{rule.queue}.Arn"]
            else:
                if spec.name not in queues:
                    queues[spec.name] = _function_queue(resolver, spec, sqs)
                    arns[spec.name] = queue_arn(sqs, queues[spec.name])
                arn = arns[spec.name]
            target: dict[str, Any] = {"Id": "local-poller" if rule.queue is None else rule.queue, "Arn": arn}
            if rule.input is not None:
                target["Input"] = rule.input
            bus = "default" if rule.kind == "schedule" else rule.bus
            events.put_targets(Rule=name, EventBusName=bus, Targets=[target])  # type: ignore[list-item]
    return queues


def _function_queue(resolver: Resolver, spec: FunctionSpec, sqs: SQSClient) -> str:
    """The queue standing in for a function target (moto cannot invoke Lambda), read by the local poller."""
    # Visibility past the function's timeout: a message is retried only after a failed (or timed-out) run.
    visibility = str(spec.timeout + 5)
    name = f"{resolver.stack_name}-{spec.name}-events"
    return sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": visibility})["QueueUrl"]


def _create_email_identities(resolver: Resolver, specs: list[FunctionSpec], **client_args: Any) -> list[str]:
    """Verify every sender the template can name: SES identities, and email addresses in parameters or environments.

    moto, like SES in its sandbox, refuses to send from an unverified address.
    """
    declared = resources_of_type(resolver.template, "AWS::SES::EmailIdentity").values()
    found = [resolver.parameter(name) for name in resolver.template.get("Parameters", {})]
    found += [value for spec in specs for value in spec.environment.values()]
    addresses = {match.group(0) for value in found if (match := _EMAIL.search(value))}
    identities = sorted({str(resolver.resolve(p["EmailIdentity"])) for p in declared} | addresses)
    if not identities:
        return []
    ses = boto3.client("sesv2", **client_args)
    existing = {item["IdentityName"] for item in ses.list_email_identities().get("EmailIdentities", [])}
    for identity in identities:
        if identity not in existing:
            ses.create_email_identity(EmailIdentity=identity)
    return identities
