"""``python -m local.stack`` (``make run``): the whole system on one machine, without Docker, read from template.yaml.

Starts, in order: moto's server (a child process) with the template's resources; the Meld simulator; one warm
worker per function; the API gateway; the EventBridge pollers and the schedule. Runs in the foreground until
Ctrl-C or SIGTERM, then stops everything in reverse order (every wait bounded).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any

import boto3

from local.aws_resources import Provisioned, provision
from local.config import HOST, LocalConfig
from local.eventbridge import FunctionTarget, Poller, QueueEventSource, Scheduler
from local.functions import FunctionPool, worker_environment
from local.gateway import Gateway
from local.jwt_tokens import JwtSettings, local_issuer, settings_for
from local.lambda_api import LambdaApi
from local.meld_simulator import MeldSimulator, SimulatorConfig
from local.template import ROOT, Cors, Resolver, cors_configuration, jwt_authorizers, load_template
from local.web import WebServer

logger = logging.getLogger("local.stack")
READY_LINE = "connection-repair local stack is ready"
# Loopback calls must not go through a developer's HTTP proxy.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_print_lock = threading.Lock()


class StartupError(Exception):
    pass


def _emit(prefix: str, line: str) -> None:
    with _print_lock:
        print(f"{prefix:>18} | {line}", flush=True)


def try_it_lines(config: LocalConfig) -> list[str]:
    """The three "try it" commands printed at startup (and quoted in the README)."""
    customer = "customer-123"
    return [
        f"curl -sS -w '\\n' -X POST {config.meld_url}/_sim/connections -H 'content-type: application/json'"
        f' -d \'{{"externalCustomerId":"{customer}","institutionName":"Chase"}}\'',
        f"curl -sS -w '\\n' {config.meld_url}/_sim/deliveries",
        f"curl -sS -w '\\n' {config.api_url}/connections"
        f' -H "Authorization: Bearer $(make -s token CUSTOMER={customer})"',
    ]


def _check_port_free(port: int, variable: str) -> None:
    with socket.socket() as probe:
        # As the servers bind: connections of a previous run in TIME_WAIT do not make the port busy, a listener does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            raise StartupError(f"port {port} on {HOST} is in use: stop what uses it or set {variable}") from None


def _wait_for_url(url: str, process: subprocess.Popen[str] | None, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise StartupError(f"{what} exited during startup (code {process.returncode})")
        try:
            with _DIRECT.open(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise StartupError(f"{what} did not answer {url} within {timeout:.0f} s")


class LocalStack:
    def __init__(self, config: LocalConfig) -> None:
        self.config = config
        self._moto: subprocess.Popen[str] | None = None
        self._simulator: MeldSimulator | None = None
        self._pools: dict[str, FunctionPool] = {}
        self._gateway: Gateway | None = None
        self._lambda_api: LambdaApi | None = None
        self._web: WebServer | None = None
        self._poller: Poller | None = None
        self._scheduler: Scheduler | None = None
        self.provisioned: Provisioned | None = None

    def start(self) -> None:
        config = self.config
        for port, variable in (
            (config.aws_port, "LOCAL_AWS_PORT"),
            (config.api_port, "LOCAL_API_PORT"),
            (config.meld_port, "LOCAL_MELD_PORT"),
            (config.lambda_port, "LOCAL_LAMBDA_PORT"),
            (config.web_port, "LOCAL_WEB_PORT"),
        ):
            _check_port_free(port, variable)
        self._start_moto()
        template = load_template()
        resolver = Resolver(template, stack_name=config.stack_name, parameter_overrides=config.parameter_overrides)
        secrets = {"MeldWebhookSecret": config.webhook_secret, "MeldApiKeySecret": config.meld_api_key}
        self.provisioned = provision(resolver, secrets, **config.aws_client_args())
        self._start_simulator()
        # The issuer first: the gateway reads its keys on the first request with a token.
        self._web = WebServer(
            local_issuer(config), config.web_port, api_url=config.api_url, widget_origin=config.meld_url
        ).start()
        self._start_functions()
        authorizers = {
            name: settings_for(authorizer, config) for name, authorizer in jwt_authorizers(template, resolver).items()
        }
        self._start_gateway(authorizers, cors_configuration(template, resolver))
        self._lambda_api = LambdaApi(self._pools, config.lambda_port).start()
        self._start_eventbridge()

    def _start_moto(self) -> None:
        self._moto = subprocess.Popen(  # noqa: S603 (our own module, fixed arguments)
            [sys.executable, "-m", "local.aws_server", str(self.config.aws_port)],
            stdin=subprocess.PIPE,
            cwd=ROOT,
            env=os.environ | {"PYTHONPATH": str(ROOT)},
            text=True,
            process_group=0,
        )
        _wait_for_url(f"{self.config.aws_url}/moto-api/data.json", self._moto, 30, "moto server")

    def _start_simulator(self) -> None:
        config = self.config
        environ = dict(os.environ) | {
            "LOCAL_MELD_PORT": str(config.meld_port),
            "MELD_WEBHOOK_URL": config.webhook_url,
            "LOCAL_MELD_SIGNED_URL": config.signed_webhook_url,
            "MELD_WEBHOOK_SECRET": config.webhook_secret,
            "MELD_API_KEY": config.meld_api_key,
            # The example app frames the widget; LOCAL_MELD_WIDGET_ORIGINS adds more.
            "LOCAL_MELD_WIDGET_ORIGINS": ",".join(
                [config.web_url, *filter(None, os.environ.get("LOCAL_MELD_WIDGET_ORIGINS", "").split(","))]
            ),
        }
        self._simulator = MeldSimulator(SimulatorConfig.from_env(environ)).start()

    def _start_functions(self) -> None:
        assert self.provisioned is not None
        overrides = {
            # Fake credentials: moto accepts any, and a developer's real ones must never reach a local run.
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "AWS_ENDPOINT_URL": self.config.aws_url,
            "MELD_API_BASE_URL": self.config.meld_url,
            "MELD_WEBHOOK_URL": self.config.signed_webhook_url,
            # Emails' unsubscribe links point at the local API, not at a deployed one's host.
            "UNSUBSCRIBE_URL": f"{self.config.api_url}/unsubscribe",
        }
        for spec in self.provisioned.functions:
            self._pools[spec.name] = FunctionPool(spec, worker_environment(spec, overrides), _emit)
        # Cold starts in parallel; an import error stops the stack here rather than on the first request.
        with ThreadPoolExecutor(max_workers=4) as executor:
            for future in [executor.submit(pool.warm) for pool in self._pools.values()]:
                future.result()

    def _start_gateway(self, authorizers: dict[str, JwtSettings], cors: Cors | None) -> None:
        assert self.provisioned is not None
        routes = [route for spec in self.provisioned.functions for route in spec.routes]
        self._gateway = Gateway(routes, self._pools, authorizers, self.config.api_port, cors).start()

    def _start_eventbridge(self) -> None:
        assert self.provisioned is not None
        sqs = boto3.client("sqs", **self.config.aws_client_args())
        queues = self.provisioned.rule_queues
        targets = [FunctionTarget(sqs, url, self._pools[name]) for name, url in queues.items()]
        sources = [
            QueueEventSource(sqs, self.provisioned.resolver.refs[source.queue], source, self._invoker(source.function))
            for spec in self.provisioned.functions
            for source in spec.queues
        ]
        self._poller = Poller([*targets, *sources]).start()
        schedules = [rule for spec in self.provisioned.functions for rule in spec.rules if rule.kind == "schedule"]
        self._scheduler = Scheduler(sqs, schedules, queues, self.config.sweep_seconds).start()

    def _invoker(self, function: str) -> Callable[[dict[str, Any]], Any]:
        pool = self._pools[function]
        return lambda event: pool.invoke(event).result

    @property
    def moto_alive(self) -> bool:
        return self._moto is not None and self._moto.poll() is None

    def stop(self) -> None:
        """Reverse order; each step bounded, each runs even if an earlier one failed."""
        steps = [
            lambda: self._scheduler.stop() if self._scheduler else None,
            lambda: self._poller.stop() if self._poller else None,
            lambda: self._gateway.stop() if self._gateway else None,
            lambda: self._lambda_api.stop() if self._lambda_api else None,
            *[pool.stop for pool in self._pools.values()],
            lambda: self._simulator.stop() if self._simulator else None,
            lambda: self._web.stop() if self._web else None,
            self._stop_moto,
        ]
        for step in steps:
            try:
                step()
            except Exception:
                logger.exception("stopping a part of the local stack failed")

    def _stop_moto(self) -> None:
        if self._moto is None:
            return
        if self._moto.poll() is None:
            self._moto.terminate()
            try:
                self._moto.wait(5)
            except subprocess.TimeoutExpired:
                self._moto.kill()
                self._moto.wait(5)
        if self._moto.stdin is not None:
            self._moto.stdin.close()

    def banner(self) -> str:
        assert self.provisioned is not None
        assert self._gateway is not None
        config = self.config
        routes = "\n".join(
            f"    {route.route_key:<40} → {route.function}{'' if route.authorizer is None else '  (JWT)'}"
            for route in self._gateway.routes
        )
        rules = "\n".join(
            f"    {rule.kind:<8} {rule.schedule or rule.bus:<40} → {'' if rule.queue is None else rule.queue + ' → '}"
            f"{spec.name}" + (f"  (locally every {config.sweep_seconds:g} s)" if rule.kind == "schedule" else "")
            for spec in self.provisioned.functions
            for rule in spec.rules
        )
        lines = [
            READY_LINE,
            f"  API (API Gateway)   {config.api_url}",
            routes or "    (no HttpApi routes in template.yaml)",
            f"  Meld simulator      {config.meld_url}   (widget pages, /_sim/... control endpoints)",
            f"  AWS (moto)          {config.aws_url}   (AWS_ENDPOINT_URL; make outbox shows sent email)",
            f"  Lambda Invoke API   {config.lambda_url}   (functions by logical id; make backfill)",
            "  EventBridge rules:",
            rules or "    (no EventBridge or schedule events in template.yaml)",
            f"  Example app         {config.web_url}   (sign in as a customer; the reconnect prompt)",
            "                      and the local OIDC issuer (make token CUSTOMER=<externalCustomerId>)",
            "Try it:",
            *[f"  {line}" for line in try_it_lines(config)],
            "Ctrl-C stops everything.",
        ]
        return "\n".join(lines)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack = LocalStack(LocalConfig.from_env())
    code = 0
    try:
        stack.start()
        print(stack.banner(), flush=True)
        while not stop.wait(0.5):
            if not stack.moto_alive:
                logger.error("moto server exited; stopping")
                code = 1
                break
    except StartupError as error:
        logger.error("%s", error)
        code = 1
    except Exception:
        logger.exception("the local stack failed")
        code = 1
    finally:
        stack.stop()
        logger.info("stopped")
    sys.exit(code)


if __name__ == "__main__":
    main()
