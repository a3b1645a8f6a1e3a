"""Where an operator tool finds the stack's resources: the running local stack (`make run`), or a deployed stack
(``STACK=<name>``, with the caller's AWS credentials and region), by the template's logical ids."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from local.config import LocalConfig
from local.template import Resolver, functions, load_template

# The tools name services at run time: boto3's typed overloads (one per service name) do not apply.
new_client: Callable[..., Any] = boto3.client


class Stack(Protocol):
    def client(self, service: str) -> Any: ...

    def queue_url(self, logical_id: str) -> str: ...

    def function_name(self, logical_id: str) -> str: ...

    def table_name(self) -> str: ...

    def physical_id(self, logical_id: str) -> str:
        """What ``Ref`` of the resource gives (a secret's ARN or name, a table's name)."""
        ...

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """The function's configured environment variables."""
        ...


@dataclass(frozen=True)
class LocalStack:
    config: LocalConfig

    def client(self, service: str) -> Any:
        arguments = self.config.aws_client_args()
        if service == "lambda":
            arguments["endpoint_url"] = self.config.lambda_url  # the stack's Invoke API, not moto's Lambda
        return new_client(service, **arguments)

    def queue_url(self, logical_id: str) -> str:
        url: str = self.client("sqs").get_queue_url(QueueName=self.physical_id(logical_id))["QueueUrl"]
        return url

    def function_name(self, logical_id: str) -> str:
        return logical_id  # the local Lambda API serves each function under its logical id

    def physical_id(self, logical_id: str) -> str:
        return Resolver(load_template(), stack_name=self.config.stack_name).physical_name(logical_id)

    def table_name(self) -> str:
        return self.physical_id("ConnectionsTable")

    def function_environment(self, logical_id: str) -> dict[str, str]:
        template = load_template()
        overrides = self.config.parameter_overrides
        resolver = Resolver(template, stack_name=self.config.stack_name, parameter_overrides=overrides)
        return next(spec.environment for spec in functions(template, resolver) if spec.name == logical_id)


@dataclass(frozen=True)
class DeployedStack:
    name: str

    def client(self, service: str) -> Any:
        return new_client(service)

    def physical_id(self, logical_id: str) -> str:
        resource = self.client("cloudformation").describe_stack_resource(
            StackName=self.name, LogicalResourceId=logical_id
        )
        physical: str = resource["StackResourceDetail"]["PhysicalResourceId"]
        return physical

    def queue_url(self, logical_id: str) -> str:
        return self.physical_id(logical_id)  # an SQS queue's physical id is its URL

    def function_name(self, logical_id: str) -> str:
        return self.physical_id(logical_id)

    def table_name(self) -> str:
        return self.physical_id("ConnectionsTable")

    def outputs(self) -> dict[str, str]:
        [described] = self.client("cloudformation").describe_stacks(StackName=self.name)["Stacks"]
        return {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}

    def function_environment(self, logical_id: str) -> dict[str, str]:
        configuration = self.client("lambda").get_function_configuration(FunctionName=self.physical_id(logical_id))
        variables: dict[str, str] = configuration.get("Environment", {}).get("Variables", {})
        return variables


def stack_of(name: str | None) -> Stack:
    return DeployedStack(name) if name else LocalStack(LocalConfig.from_env())


def options(argv: list[str]) -> dict[str, str]:
    """``KEY=value`` arguments as make passes them (``APPLY=$(APPLY)``); an empty value is no value."""
    return {key: value for key, _, value in (argument.partition("=") for argument in argv) if value}


def run_tool(main: Callable[[list[str]], int], argv: list[str]) -> int:
    """An operator tool's exit status; what keeps it from reaching the stack said in a sentence, not a traceback."""
    try:
        return main(argv)
    except EndpointConnectionError as error:
        print(
            f"cannot reach {error.kwargs.get('endpoint_url')}: is the local stack running (make run)? "
            "For a deployed stack, add STACK=<name>.",
            file=sys.stderr,
        )
    except NoCredentialsError:
        print("no AWS credentials: STACK=<name> uses yours (AWS_PROFILE, or the environment's keys)", file=sys.stderr)
    except BotoCoreError as error:  # a profile or region that does not exist
        print(f"AWS configuration: {error}", file=sys.stderr)
    except ClientError as error:
        print(f"AWS refused: {error}", file=sys.stderr)
    return 1
