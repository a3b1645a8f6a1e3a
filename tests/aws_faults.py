"""Faults injected at the AWS boundary: a botocore hook answers in the service's place (the code under test is never
replaced), and the table read back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import boto3


@dataclass
class AwsFault:
    """Answers the next ``times`` calls of ``operation`` on one boto3 client with an error (or a parsed reply)."""

    client: Any
    operation: str  # "dynamodb.TransactWriteItems"
    reply: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]
    times: int = 1
    skip: int = 0  # let this many calls through first
    calls: int = 0
    injected: int = 0

    def __post_init__(self) -> None:
        self.client.meta.events.register(f"before-call.{self.operation}", self)

    def __call__(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        self.calls += 1
        if self.calls <= self.skip or self.injected >= self.times:
            return None
        self.injected += 1
        status, parsed = self.reply(params)
        return SimpleNamespace(status_code=status, headers={}), parsed


def aws_error(code: str, status: int = 400, **extra: Any) -> Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]:
    def reply(_: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return status, {"Error": {"Code": code, "Message": f"injected {code}"}, "ResponseMetadata": {}, **extra}

    return reply


def transaction_conflict(on_item: int) -> Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]:
    reasons = [{"Code": "None"}, {"Code": "None"}]
    reasons[on_item] = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
    return aws_error("TransactionCanceledException", CancellationReasons=reasons)


def scan(table: str) -> list[dict[str, Any]]:
    return list(boto3.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"])
