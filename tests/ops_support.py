"""The stack as the operator tools (ops/) find it, on the test's moto: the queues and the table the local stack
creates from template.yaml, functions by logical id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from local.template import Resolver, functions, load_template


@dataclass(frozen=True)
class MotoStack:
    resolver: Resolver

    def client(self, service: str) -> Any:
        return boto3.client(service)

    def queue_url(self, logical_id: str) -> str:
        return str(self.resolver.refs[logical_id])

    def function_name(self, logical_id: str) -> str:
        return logical_id

    def table_name(self) -> str:
        return self.resolver.physical_name("ConnectionsTable")

    def physical_id(self, logical_id: str) -> str:
        return self.resolver.physical_name(logical_id)

    def function_environment(self, logical_id: str) -> dict[str, str]:
        return next(spec.environment for spec in functions(load_template(), self.resolver) if spec.name == logical_id)
