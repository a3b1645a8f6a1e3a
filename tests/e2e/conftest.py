"""The whole local stack (`python -m local.stack`), started once per session on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from connection_repair.adapters.dynamodb.connection_store import DynamoDBConnectionStore
from local.config import LocalConfig
from local.jwt_tokens import local_issuer
from local.meld_simulator.client import SimulatorClient
from local.stack import READY_LINE
from local.template import ROOT, Resolver, functions, load_template, resources_of_type

START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20
# Short enough for the expired-token test to wait it out, long enough for a repair to be completed within it.
TOKEN_LIFETIME_SECONDS = 5


def deployed_routes() -> set[str]:
    """Route keys template.yaml serves today (others' functions land while the project grows)."""
    template = load_template()
    return {route.route_key for spec in functions(template, Resolver(template)) for route in spec.routes}


def has_notifier() -> bool:
    template = load_template()
    specs = functions(template, Resolver(template))
    return any("Connection Needs Attention" in str(rule.pattern) for spec in specs for rule in spec.rules)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


@dataclass
class RunningStack:
    config: LocalConfig
    log: Path

    def token(self, customer: str) -> str:
        return local_issuer(self.config).issue(customer)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.config.api_url, timeout=35.0, trust_env=False)

    def lambda_client(self) -> Any:
        """boto3's Lambda client on the stack's Invoke API."""
        return boto3.client("lambda", **(self.config.aws_client_args() | {"endpoint_url": self.config.lambda_url}))

    def simulator(self) -> SimulatorClient:
        return SimulatorClient(self.config.meld_url, timeout=10.0)

    def store(self) -> DynamoDBConnectionStore:
        """The connections table in moto, read through the same adapter the functions use."""
        template = load_template()
        (table,) = resources_of_type(template, "AWS::DynamoDB::Table")
        client = boto3.client("dynamodb", **self.config.aws_client_args())
        name = Resolver(template, stack_name=self.config.stack_name).physical_name(table)
        return DynamoDBConnectionStore(client, name, event_ttl=timedelta(days=1))

    def broken_connection(self, customer: str, institution_name: str = "Chase") -> dict[str, Any]:
        """A connection of this customer's that Meld has just asked to be repaired, as the stack has stored it."""
        with self.simulator() as sim:
            connection = sim.create_connection(customer, institution_name=institution_name)
            sim.set_status(connection["id"], "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
            # Created, linked, broken: three webhooks acknowledged.
            sim.wait_for_deliveries(
                lambda items: (
                    sum(1 for item in items if item["connectionId"] == connection["id"] and item["status"] == 200) >= 3
                ),
                timeout=20,
            )
        return connection

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    aws_port, api_port, meld_port, lambda_port, web_port = _free_ports(5)
    environment = {
        "LOCAL_AWS_PORT": str(aws_port),
        "LOCAL_API_PORT": str(api_port),
        "LOCAL_MELD_PORT": str(meld_port),
        "LOCAL_LAMBDA_PORT": str(lambda_port),
        "LOCAL_WEB_PORT": str(web_port),
        "LOCAL_SWEEP_SECONDS": "1",
        "LOCAL_MELD_TOKEN_LIFETIME_SECONDS": str(TOKEN_LIFETIME_SECONDS),
        "LOCAL_MELD_RETRY_DELAYS": "0.5,1,2",
    }
    config = LocalConfig.from_env(environment)
    log = tmp_path_factory.mktemp("local-stack") / "stack.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.stack"],
            cwd=ROOT,
            env=os.environ | environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    running = RunningStack(config, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while READY_LINE not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the local stack did not start:\n{running.log_tail()}")
            time.sleep(0.1)
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
            pytest.fail(f"the local stack did not stop on SIGTERM:\n{running.log_tail()}")
        assert code == 0, running.log_tail()
        # Every child stopped with it: its ports are free again.
        for port in (aws_port, api_port, meld_port, lambda_port, web_port):
            with socket.socket() as probe:
                # SO_REUSEADDR, as the servers use: closed connections in TIME_WAIT do not count, a listener does.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(("127.0.0.1", port))
