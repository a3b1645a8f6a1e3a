"""The Repair API's use case: the customer's connections, repair tokens, new connections, preferences."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from connection_repair.adapters.dynamodb.connections import DynamoDBCustomerConnections
from connection_repair.adapters.dynamodb.incidents import DynamoDBIncidentStore
from connection_repair.adapters.dynamodb.preferences import DynamoDBPreferencesStore
from connection_repair.erasure.ports import CustomerRecords
from connection_repair.platform.settings import RepairApiSettings
from connection_repair.repair.ports import ConnectGateway, RepairConnectGrant, RequestRecords, StartConnectGrant
from connection_repair.repair.service import RepairService

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

# The Repair API answers people: AWS calls get short timeouts so a slow dependency fails inside API Gateway's 29 s.
API_AWS_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 3})


@cache
def repair_api_settings() -> RepairApiSettings:
    return RepairApiSettings.from_env()


class DeferredGateway:
    """A ``ConnectGateway`` that builds the real one (the Meld client, and so httpx) on its first call.

    Most Repair API requests (the connection list, one connection, preferences) never call Meld, and a cold start
    that serves one of them should not import httpx (docs/performance.md).
    """

    def __init__(self, build: Callable[[], ConnectGateway]) -> None:
        self._build = cache(build)

    def repair(self, connection_id: str) -> RepairConnectGrant:
        return self._build().repair(connection_id)

    def start(
        self, external_customer_id: str, *, institution_id: str | None, products: Sequence[str] | None
    ) -> StartConnectGrant:
        return self._build().start(external_customer_id, institution_id=institution_id, products=products)

    def delete(self, connection_id: str) -> None:
        self._build().delete(connection_id)


def _meld_gateway(settings: RepairApiSettings) -> ConnectGateway:
    from connection_repair.wiring.meld import meld_gateway

    # Bounded: every retry and backoff ends by the deadline, well inside API Gateway's 29 s.
    return meld_gateway(
        settings, deadline_seconds=settings.meld_deadline_seconds, max_attempts=settings.meld_max_attempts
    )


@cache
def _dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb", config=API_AWS_CONFIG)


@cache
def request_records() -> RequestRecords:
    # Built on the first POST carrying an Idempotency-Key: the idempotency utility stays out of other cold starts.
    from connection_repair.adapters.dynamodb.requests import DynamoDBRequestRecords

    return DynamoDBRequestRecords(_dynamodb(), repair_api_settings().table_name)


@cache
def repair_service() -> RepairService:
    settings = repair_api_settings()
    dynamodb = _dynamodb()
    return RepairService(
        connections=DynamoDBCustomerConnections(dynamodb, settings.table_name),
        preferences=DynamoDBPreferencesStore(dynamodb, settings.table_name),
        meld=DeferredGateway(lambda: _meld_gateway(settings)),
        incidents=DynamoDBIncidentStore(dynamodb, settings.table_name),
    )


@cache
def customer_records() -> CustomerRecords:
    # Built on the first DELETE /me: a rare request, its adapter stays out of other cold starts.
    from connection_repair.adapters.dynamodb.erasure import DynamoDBCustomerRecords

    return DynamoDBCustomerRecords(_dynamodb(), repair_api_settings().table_name)
