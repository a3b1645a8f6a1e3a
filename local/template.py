"""template.yaml, read for the local stack: intrinsic functions resolved, functions with their routes and rules.

The local stack serves whatever the template declares; nothing here names a particular function, route or rule.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
# The mark of a secret the stack generated and nobody filled in (connection_repair.adapters.secrets; the local stack
# starts before the layer is on the path).
PLACEHOLDER_MARK = "placeholder"
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
DEFAULT_STACK_NAME = "connection-repair-local"
# CloudFormation's intrinsic functions, in long form.
_FUNCTIONS = frozenset(
    {"Fn::Sub", "Fn::GetAtt", "Fn::If", "Fn::Join", "Fn::Select", "Fn::Split", "Fn::Equals", "Fn::Not", "Fn::And"}
    | {"Fn::Or", "Fn::FindInMap", "Fn::Base64", "Fn::ImportValue", "Fn::GetAZs", "Fn::Cidr", "Fn::Length"}
)


# Properties that name a resource, by resource type (TableName, QueueName, ...).
_NAME_PROPERTIES = ("TableName", "QueueName", "TopicName", "LogGroupName", "FunctionName", "Name")


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, ...) as their long form ({"Fn::Sub": ...})."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    # Short and long forms then read alike: !Ref and !Condition keep their names, the rest are Fn::<name>.
    key = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    return {key: value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as data: a fresh copy each call, parsed once per version of the file (every test's fixture
    reads it, and parsing was half of the fixture's time)."""
    return copy.deepcopy(_parsed(path, path.stat().st_mtime_ns))


@functools.cache
def _parsed(path: Path, _version: int) -> dict[str, Any]:
    with path.open() as stream:
        document: dict[str, Any] = yaml.load(stream, Loader=_CloudFormationLoader)  # noqa: S506 (safe loader subclass)
    return document


def resources_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource.get("Properties", {})
        for name, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def parse_parameter_overrides(text: str) -> dict[str, str]:
    """``Key=Value Key2='a b'``, the syntax of ``sam deploy --parameter-overrides``."""
    pairs = (item.split("=", 1) for item in shlex.split(text))
    return dict(pairs)


class UnsupportedIntrinsic(ValueError):
    pass


class _NoValue:
    """AWS::NoValue: the property or list item is left out (unlike JSON null, which event patterns use)."""


NO_VALUE = _NoValue()


@dataclass
class Resolver:
    """Resolves intrinsic functions to local values.

    ``refs`` maps a logical id to what ``Ref`` returns, ``attributes`` maps ``"Id.Attr"`` to what ``GetAtt`` returns;
    the local stack fills both as it creates resources. Anything not created locally gets a deterministic fake.
    """

    template: Mapping[str, Any]
    stack_name: str = DEFAULT_STACK_NAME
    parameter_overrides: Mapping[str, str] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)

    def parameter(self, name: str) -> str:
        if name in self.parameter_overrides:
            return self.parameter_overrides[name]
        default = self.template.get("Parameters", {})[name].get("Default", "")
        return str(default)

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{self.stack_name}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.template.get("Parameters", {}):
            value = self.parameter(name)
            kind = str(self.template["Parameters"][name].get("Type", "String"))
            # List parameters Ref as lists.
            is_list = kind == "CommaDelimitedList" or kind.startswith("List<")
            return [item.strip() for item in value.split(",") if item.strip()] if is_list else value
        if name in self.refs:
            return self.refs[name]
        if name in self.template["Resources"]:
            return self.physical_name(name)
        raise UnsupportedIntrinsic(f"Ref to unknown name {name!r}")

    def get_att(self, logical_id: str, attribute: str) -> str:
        key = f"{logical_id}.{attribute}"
        if key in self.attributes:
            return self.attributes[key]
        if logical_id not in self.template["Resources"]:
            raise UnsupportedIntrinsic(f"GetAtt of unknown resource {logical_id!r}")
        service = self.template["Resources"][logical_id]["Type"].split("::")[1].lower()
        return f"arn:aws:{service}:{REGION}:{ACCOUNT_ID}:{self.physical_name(logical_id)}"

    def physical_name(self, logical_id: str) -> str:
        """The name the template gives the resource, else a stable local one.

        CloudFormation would add a random suffix; a stable name keeps restarts and env.json predictable.
        """
        properties = self.template["Resources"].get(logical_id, {}).get("Properties", {})
        for key in _NAME_PROPERTIES:
            if properties.get(key):
                return str(self.resolve(properties[key]))
        return f"{self.stack_name}-{logical_id}"

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function replaced by its local result."""
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Condition" and isinstance(argument, str):
                return self.condition(argument)
            if key in _FUNCTIONS:
                return self._function(key, argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _function(self, name: str, argument: Any) -> Any:  # noqa: PLR0911 (one case per intrinsic)
        match name:
            case "Fn::GetAtt":
                logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
                return self.get_att(logical_id, attribute)
            case "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                return self._sub(text, self.resolve(variables))
            case "Fn::If":
                condition, when_true, when_false = argument
                return self.resolve(when_true if self.condition(condition) else when_false)
            case "Fn::Equals":
                left, right = self.resolve(argument)
                return str(left) == str(right)
            case "Fn::Not":
                return not self.resolve(argument[0])
            case "Fn::And":
                return all(self.resolve(argument))
            case "Fn::Or":
                return any(self.resolve(argument))
            case "Fn::Join":
                separator, items = argument
                return str(separator).join(str(item) for item in self.resolve(items))
            case "Fn::Select":
                index, items = self.resolve(argument)
                return items[int(index)]
            case "Fn::Split":
                separator, text = self.resolve(argument)
                return str(text).split(separator)
            case "Fn::FindInMap":
                map_name, top, second = self.resolve(argument)
                return self.template["Mappings"][map_name][top][second]
            case "Fn::Length":
                return len(self.resolve(argument))
        raise UnsupportedIntrinsic(f"{name} is not supported by the local stack")

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return str(variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return self.get_att(logical_id, attribute)
            return str(self.ref(expression))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


# --- functions, routes and rules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpRoute:
    function: str
    method: str  # upper case; ANY matches every method
    path: str  # "/connections/{connectionId}", "/{proxy+}" or "$default"
    authorizer: str | None  # the HTTP API authorizer's name, None when the route is open
    scopes: tuple[str, ...] = ()

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True)
class RuleEvent:
    function: str
    name: str  # the rule's name in EventBridge
    kind: str  # "pattern" or "schedule"
    bus: str  # the bus name ("default" when the template names none)
    pattern: dict[str, Any] | None = None
    schedule: str | None = None
    input: str | None = None  # a constant Input replaces the event, as EventBridge does
    enabled: bool = True
    queue: str | None = None  # the template queue the rule delivers to (the function reads it), None: the function


@dataclass(frozen=True)
class QueueSource:
    """An SQS event source mapping: Lambda polls the queue and invokes the function with batches of records."""

    function: str
    queue: str  # the queue's logical id
    batch_size: int = 10
    reports_failures: bool = False  # ReportBatchItemFailures: only the records the function names return


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    code_dir: Path
    handler: str  # "app.lambda_handler"
    timeout: int
    memory: int
    environment: dict[str, str]
    routes: tuple[HttpRoute, ...]
    rules: tuple[RuleEvent, ...]
    queues: tuple[QueueSource, ...] = ()
    # Asynchronous invocations (EventBridge) are tried 1 + MaximumRetryAttempts times, as Lambda does.
    async_attempts: int = 3


@dataclass(frozen=True)
class JwtAuthorizer:
    name: str
    issuer: str
    audiences: tuple[str, ...]
    identity_source: str  # the header the token comes in, lower case


_RULE_TYPES = ("EventBridgeRule", "CloudWatchEvent")
_SCHEDULE_TYPES = ("Schedule", "ScheduleV2")


def _merged(global_value: Any, own_value: Any) -> Any:
    # SAM merges Globals into each function: maps key by key, lists and scalars replaced.
    if isinstance(global_value, dict) and isinstance(own_value, dict):
        return {key: _merged(global_value.get(key), own_value.get(key)) for key in global_value.keys() | own_value}
    return global_value if own_value is None else own_value


def functions(template: Mapping[str, Any], resolver: Resolver) -> list[FunctionSpec]:
    """Every ``AWS::Serverless::Function`` with its resolved environment, HTTP API routes, rules and queues.

    Rules come from the function's own events (EventBridgeRule, CloudWatchEvent, Schedule, ScheduleV2) and from
    ``AWS::Events::Rule`` resources whose targets are the function or a queue the function reads (SQS events).
    """
    globals_ = template.get("Globals", {}).get("Function", {})
    queue_sources = _queue_sources(template)
    rule_resources = _rule_resources(template, resolver, queue_sources)
    specs: list[FunctionSpec] = []
    for name, own in resources_of_type(template, "AWS::Serverless::Function").items():
        properties = _merged(globals_, own)
        variables = properties.get("Environment", {}).get("Variables", {})
        environment = {key: _env_value(value) for key, value in resolver.resolve(variables).items()}
        routes: list[HttpRoute] = []
        rules: list[RuleEvent] = []
        for event_name, event in (own.get("Events") or {}).items():
            event_properties = event.get("Properties") or {}
            if event["Type"] == "HttpApi":
                routes.append(_route(template, name, event_properties))
            elif event["Type"] in _RULE_TYPES + _SCHEDULE_TYPES:
                rule = f"{resolver.stack_name}-{name}-{event_name}"[:64]
                rules.append(_rule(name, rule, event["Type"], resolver.resolve(event_properties)))
        rules += rule_resources.get(name, [])
        retries = (properties.get("EventInvokeConfig") or {}).get("MaximumRetryAttempts", 2)
        specs.append(
            FunctionSpec(
                name=name,
                code_dir=ROOT / str(resolver.resolve(properties["CodeUri"])),
                handler=str(properties["Handler"]),
                timeout=int(properties.get("Timeout", 3)),
                memory=int(properties.get("MemorySize", 128)),
                environment=environment,
                routes=tuple(routes),
                rules=tuple(rules),
                queues=tuple(source for source in queue_sources if source.function == name),
                async_attempts=1 + int(retries),
            )
        )
    return specs


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, dict | list) else str(value)


def _http_api_properties(template: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """The HttpApi resource the event is attached to, or SAM's implicit API (configured by Globals) when none."""
    api_id = event.get("ApiId")
    if isinstance(api_id, dict) and "Ref" in api_id:
        properties: dict[str, Any] = template["Resources"][api_id["Ref"]].get("Properties", {})
        return properties
    implicit: dict[str, Any] = template.get("Globals", {}).get("HttpApi", {})
    return implicit


def _route(template: Mapping[str, Any], function: str, event: Mapping[str, Any]) -> HttpRoute:
    method = str(event.get("Method", "ANY")).upper()
    if method == "X-AMAZON-APIGATEWAY-ANY-METHOD":
        method = "ANY"
    path = str(event.get("Path", "$default"))
    api_auth = _http_api_properties(template, event).get("Auth") or {}
    own_auth = event.get("Auth") or {}
    authorizer = own_auth.get("Authorizer", api_auth.get("DefaultAuthorizer"))
    if authorizer == "NONE":
        authorizer = None
    scopes = tuple(own_auth.get("AuthorizationScopes") or ())
    return HttpRoute(function=function, method=method, path=path, authorizer=authorizer, scopes=scopes)


def _rule(function: str, name: str, kind: str, event: Mapping[str, Any]) -> RuleEvent:
    bus = str(event.get("EventBusName") or "default")
    if bus.startswith("arn:"):
        bus = bus.rsplit("/", 1)[-1]
    enabled = event.get("Enabled", True) is not False and event.get("State", "ENABLED") != "DISABLED"
    constant = event.get("Input")
    if kind in _SCHEDULE_TYPES:
        schedule = event.get("Schedule") or event.get("ScheduleExpression")
        return RuleEvent(function, name, "schedule", bus, schedule=schedule, input=constant, enabled=enabled)
    return RuleEvent(function, name, "pattern", bus, pattern=event.get("Pattern"), input=constant, enabled=enabled)


def _arn_of(arn: Any) -> str | None:
    """The logical id of the resource an ARN names (!GetAtt X.Arn or !Ref X), before resolution."""
    if isinstance(arn, dict) and "Fn::GetAtt" in arn:
        attribute = arn["Fn::GetAtt"]
        parts = attribute.split(".", 1) if isinstance(attribute, str) else list(attribute)
        return str(parts[0]) if len(parts) == 2 and parts[1] == "Arn" else None
    if isinstance(arn, dict) and "Ref" in arn:
        return str(arn["Ref"])
    return None


def _queue_sources(template: Mapping[str, Any]) -> list[QueueSource]:
    """The functions' SQS events on the template's own queues."""
    found: list[QueueSource] = []
    for name, function in resources_of_type(template, "AWS::Serverless::Function").items():
        for event in (function.get("Events") or {}).values():
            properties = event.get("Properties") or {}
            queue = _arn_of(properties.get("Queue"))
            if event["Type"] != "SQS" or queue is None:
                continue
            responses = properties.get("FunctionResponseTypes") or ()
            reports = "ReportBatchItemFailures" in responses
            found.append(QueueSource(name, queue, int(properties.get("BatchSize", 10)), reports))
    return found


def _rule_resources(
    template: Mapping[str, Any], resolver: Resolver, queue_sources: list[QueueSource]
) -> dict[str, list[RuleEvent]]:
    """``AWS::Events::Rule`` resources by the function they reach: as their target, or through a queue it reads."""
    readers = {source.queue: source.function for source in queue_sources}
    found: dict[str, list[RuleEvent]] = {}
    for logical_id, properties in resources_of_type(template, "AWS::Events::Rule").items():
        for target in properties.get("Targets") or []:
            target_id = _arn_of(target.get("Arn"))
            queue = target_id if target_id in readers else None
            function = target_id if queue is None else readers[queue]
            if function is None or template["Resources"].get(function, {}).get("Type") != "AWS::Serverless::Function":
                continue
            event = resolver.resolve({key: value for key, value in properties.items() if key != "Targets"})
            event["Pattern"] = event.get("EventPattern")
            event["Input"] = resolver.resolve(target.get("Input"))
            name = str(event.get("Name") or resolver.physical_name(logical_id))
            kind = "Schedule" if event.get("ScheduleExpression") else "EventBridgeRule"
            rule = _rule(function, name, kind, event)
            found.setdefault(function, []).append(replace(rule, queue=queue))
    return found


def jwt_authorizers(template: Mapping[str, Any], resolver: Resolver) -> dict[str, JwtAuthorizer]:
    """The JWT authorizers of every HTTP API (and of the implicit one), by name."""
    implicit = template.get("Globals", {}).get("HttpApi", {})
    apis = [*resources_of_type(template, "AWS::Serverless::HttpApi").values(), implicit]
    found: dict[str, JwtAuthorizer] = {}
    for api in apis:
        for name, config in ((api.get("Auth") or {}).get("Authorizers") or {}).items():
            jwt = config.get("JwtConfiguration")
            if jwt is None:
                continue
            jwt = resolver.resolve(jwt)
            audience = jwt.get("audience") or []
            source = str(config.get("IdentitySource", "$request.header.Authorization"))
            found[name] = JwtAuthorizer(
                name=name,
                issuer=str(jwt.get("issuer") or ""),
                audiences=tuple(str(item) for item in ([audience] if isinstance(audience, str) else audience) if item),
                identity_source=source.removeprefix("$request.header.").lower(),
            )
    return found


@dataclass(frozen=True)
class Cors:
    """An HTTP API's CorsConfiguration (header names lower case)."""

    origins: tuple[str, ...]
    methods: tuple[str, ...]
    headers: tuple[str, ...]
    expose: tuple[str, ...]
    max_age: int | None
    credentials: bool

    def allows(self, origin: str) -> bool:
        return "*" in self.origins or origin in self.origins


def cors_configuration(template: Mapping[str, Any], resolver: Resolver) -> Cors | None:
    """The CORS settings of the template's HTTP API (the first that has them), as API Gateway applies them."""
    implicit = template.get("Globals", {}).get("HttpApi", {})
    for api in [*resources_of_type(template, "AWS::Serverless::HttpApi").values(), implicit]:
        config = api.get("CorsConfiguration")
        if not isinstance(config, dict):
            continue
        config = resolver.resolve(config)

        def names(key: str, config: dict[str, Any] = config) -> tuple[str, ...]:
            value = config.get(key) or []
            return tuple(str(item).lower() for item in ([value] if isinstance(value, str) else value))

        return Cors(
            origins=tuple(str(item) for item in config.get("AllowOrigins") or []),
            methods=tuple(item.upper() for item in names("AllowMethods")),
            headers=names("AllowHeaders"),
            expose=names("ExposeHeaders"),
            max_age=int(config["MaxAge"]) if "MaxAge" in config else None,
            credentials=bool(config.get("AllowCredentials", False)),
        )
    return None


def secret_string_shape(properties: Mapping[str, Any], value: str) -> str:
    """A secret's local value in the JSON shape its GenerateSecretString describes (or the bare value): as an
    operator stores it after deploying, so without the stack's placeholder mark."""
    generate = properties.get("GenerateSecretString") or {}
    if "SecretString" in properties:
        return str(properties["SecretString"])
    key = generate.get("GenerateStringKey")
    if not key:
        return value
    document = json.loads(generate.get("SecretStringTemplate") or "{}")
    document.pop(PLACEHOLDER_MARK, None)
    document[key] = value
    return json.dumps(document)
