"""Repair API: warm p50 of POST /connections/{id}/repair through the real handler vs its floor, the same DynamoDB
reads and writes done with bare boto3 (a consistent GetItem, a conditional UpdateItem of the connection's attributes,
as every connection write is: docs/decisions.md §4) plus one bare httpx POST to the
same Meld stand-in; both on moto in-process and an httpx MockTransport, interleaved in one run. Target: ratio <= 1.3.

Run: `make bench-repair` (or `.venv/bin/python -m bench.bench_repair`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from datetime import UTC, datetime

from bench.offline import use_fake_aws

use_fake_aws(POWERTOOLS_LOG_LEVEL="INFO")

import boto3
import httpx
from moto import mock_aws

from bench.harness import Comparison, compare, record
from local.apigw import http_api_event
from local.aws_resources import create_resources

ITERATIONS = int(os.environ.get("BENCH_ITERATIONS", "400"))
WARMUP = 50
CUSTOMER = "bench-customer"
MELD_BODY = json.dumps(
    {
        "id": "bench-conn",
        "connectToken": "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2ln",
        "institutionId": "inst",
        "widgetUrl": "https://institution-connect-sb.meld.io?connectToken=x",
    }
).encode()


def meld_stand_in(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=MELD_BODY, headers={"content-type": "application/json"})


def main() -> Comparison:
    with mock_aws():
        resources = create_resources()
        os.environ.update(TABLE_NAME=resources.table_name, MELD_API_KEY="bench", MELD_API_BASE_URL="https://meld.bench")
        from connection_repair.adapters.dynamodb.connections import DynamoDBCustomerConnections, connection_update
        from connection_repair.adapters.dynamodb.keys import connection_key
        from connection_repair.adapters.dynamodb.preferences import DynamoDBPreferencesStore
        from connection_repair.adapters.meld.client import MeldClient
        from connection_repair.adapters.meld.gateway import MeldConnectGateway
        from connection_repair.domain.connection import Connection
        from connection_repair.repair.service import RepairService
        from connection_repair.wiring.repair_api import API_AWS_CONFIG
        from functions.repair_api import app
        from tests.support import LambdaContext

        dynamodb = boto3.client("dynamodb", config=API_AWS_CONFIG)
        store = DynamoDBCustomerConnections(dynamodb, resources.table_name)
        preferences = DynamoDBPreferencesStore(dynamodb, resources.table_name)
        transport = httpx.MockTransport(meld_stand_in)
        # The handler's own wiring, except that the Meld client's transport is the in-process stand-in.
        meld = MeldClient("https://meld.bench", lambda: "bench", transport=transport, deadline_seconds=12.0)
        service = RepairService(connections=store, preferences=preferences, meld=MeldConnectGateway(meld))
        app.repair_service = lambda: service  # type: ignore[assignment]

        broken = {"status": "RECONNECT_REQUIRED", "status_reason": "LOGIN_REQUIRED", "version": 1}
        for connection_id in ("bench-conn", "floor-conn"):
            store.save_connection(
                Connection(connection_id=connection_id, external_customer_id=CUSTOMER, **broken),  # type: ignore[arg-type]
                expected_version=None,
            )
        event = http_api_event(
            "POST",
            "/connections/bench-conn/repair",
            route_key="POST /connections/{connectionId}/repair",
            path_parameters={"connectionId": "bench-conn"},
            jwt_claims={"sub": CUSTOMER},
        )
        context = LambdaContext()
        floor_http = httpx.Client(base_url="https://meld.bench", transport=transport)
        floor_version = [1]

        def subject(_i: int) -> None:
            response = app.lambda_handler(event, context)
            assert response["statusCode"] == 200, response

        def floor(_i: int) -> None:
            item = dynamodb.get_item(
                TableName=resources.table_name, Key=connection_key("floor-conn"), ConsistentRead=True
            )["Item"]
            grant = floor_http.post("/bank-linking/connect/repair", json={"connectionId": "floor-conn"}).json()
            assert grant["connectToken"]
            version = floor_version[0]
            updated = Connection(
                connection_id="floor-conn",
                external_customer_id=item["externalCustomerId"]["S"],
                repair_attempts=version,
                last_repair_at=datetime.now(UTC),
                repair_pending=True,
                version=version + 1,
                **{key: value for key, value in broken.items() if key != "version"},  # type: ignore[arg-type]
            )
            dynamodb.update_item(TableName=resources.table_name, **connection_update(updated, version))
            floor_version[0] = version + 1

        # Lambda writes logs and metrics to stdout; here they go to memory, for the subject as in Lambda.
        from connection_repair.platform.observability import logger

        logger.registered_handler.setStream(io.StringIO())  # type: ignore[attr-defined]
        with contextlib.redirect_stdout(io.StringIO()):
            result = compare(
                "repair_api_repair_vs_bare_calls", subject, floor, target=1.3, iterations=ITERATIONS, warmup=WARMUP
            )
    return result


if __name__ == "__main__":
    comparison = main()
    print(comparison.line())
    record([comparison])
    sys.exit(0)
