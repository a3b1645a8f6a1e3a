"""Runs the template's functions: each in its own worker processes, with its own environment and module caches.

A worker (``local/lambda_worker.py``) is one execution environment: started on demand, kept warm, reused one event at
a time; a function scales out to ``max_workers`` concurrent environments, as Lambda would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from local.template import ROOT, FunctionSpec

logger = logging.getLogger(__name__)

WORKER_SCRIPT = ROOT / "local" / "lambda_worker.py"
LAYER_DIR = ROOT / "layers" / "common"
INIT_TIMEOUT_SECONDS = 30.0  # a cold start is ~1 s; this only bounds a stuck import
# Variables a worker inherits from the developer's shell; everything else comes from the template, as in Lambda.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")

type LogSink = Callable[[str, str], None]
"""Receives (function name, one line the function logged)."""


class InvocationError(Exception):
    """The function raised, timed out or could not start: Lambda reports an error, API Gateway answers 500."""


@dataclass(frozen=True)
class Invocation:
    result: Any
    duration_ms: float


def worker_environment(spec: FunctionSpec, overrides: Mapping[str, str]) -> dict[str, str]:
    """The environment Lambda gives the function: the template's variables, the runtime's own, the local endpoints."""
    inherited = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    runtime = {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "_HANDLER": spec.handler,
        "TZ": ":UTC",
        # Lambda puts the function's code first, then the layer (/var/task, then /opt/python).
        "PYTHONPATH": os.pathsep.join([str(spec.code_dir), str(LAYER_DIR)]),
        "PYTHONUNBUFFERED": "1",
    }
    return inherited | runtime | spec.environment | dict(overrides)


class Worker:
    def __init__(self, spec: FunctionSpec, environment: Mapping[str, str], log: LogSink) -> None:
        self.spec = spec
        self._process = subprocess.Popen(  # noqa: S603 (our own script, fixed arguments)
            [sys.executable, str(WORKER_SCRIPT), spec.handler, spec.name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(environment),
            cwd=spec.code_dir,
            text=True,
            # Its own process group: a Ctrl-C in the terminal reaches the stack, which stops workers in order.
            process_group=0,
        )
        self._log_thread = threading.Thread(
            target=self._forward_logs, args=(self._process.stderr, log), name=f"{spec.name}-logs", daemon=True
        )
        self._log_thread.start()

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def wait_ready(self, timeout: float = INIT_TIMEOUT_SECONDS) -> None:
        message = self._receive(timeout)
        if message.get("type") != "ready":
            self.stop()
            raise InvocationError(f"{self.spec.name} failed to initialise: {message.get('errorMessage')}")

    def invoke(self, event: Any, timeout: float) -> Invocation:
        started = time.monotonic()
        request = {"event": event, "requestId": str(uuid.uuid4()), "timeoutMs": int(timeout * 1000)}
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            message = self._receive(timeout)
        except (OSError, InvocationError):
            self.stop()
            raise
        duration_ms = (time.monotonic() - started) * 1000
        if message.get("type") != "result":
            raise InvocationError(f"{message.get('errorType')}: {message.get('errorMessage')}")
        return Invocation(result=message.get("result"), duration_ms=duration_ms)

    def _receive(self, timeout: float) -> dict[str, Any]:
        stdout = self._process.stdout
        assert stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                # Lambda stops a function at its timeout; so do we (the environment is not reused).
                self.stop()
                raise InvocationError(f"Task timed out after {timeout:.2f} seconds")
        line = stdout.readline()
        if not line:
            self.stop()
            raise InvocationError(f"{self.spec.name} exited (code {self._process.wait(5)})")
        message: dict[str, Any] = json.loads(line)
        return message

    def stop(self) -> None:
        if self._process.stdin is not None and not self._process.stdin.closed:
            with contextlib.suppress(OSError):
                self._process.stdin.close()  # the worker's loop ends on EOF
        try:
            self._process.wait(2)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._log_thread.join(2)

    def _forward_logs(self, stream: IO[str] | None, log: LogSink) -> None:
        assert stream is not None
        for line in stream:
            log(self.spec.name, line.rstrip("\n"))
        stream.close()


class FunctionPool:
    """The warm workers of one function; ``invoke`` takes an idle one or starts another, up to ``max_workers``."""

    def __init__(
        self, spec: FunctionSpec, environment: Mapping[str, str], log: LogSink, *, max_workers: int = 4
    ) -> None:
        self.spec = spec
        self._environment = dict(environment)
        self._log = log
        self._max_workers = max_workers
        self._condition = threading.Condition()
        self._idle: list[Worker] = []
        self._all: set[Worker] = set()
        self._count = 0
        self._stopped = False

    def warm(self) -> None:
        """Start one worker now, so the first request is warm and an import error shows at startup."""
        worker = self._start_worker()
        with self._condition:
            self._idle.append(worker)
            self._condition.notify()

    def invoke(self, event: Any, *, timeout: float | None = None) -> Invocation:
        limit = float(self.spec.timeout) if timeout is None else min(timeout, float(self.spec.timeout))
        worker = self._acquire(deadline=time.monotonic() + limit)
        try:
            return worker.invoke(event, limit)
        finally:
            self._release(worker)

    def _acquire(self, deadline: float) -> Worker:
        with self._condition:
            while not self._idle and self._count >= self._max_workers and not self._stopped:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise InvocationError(f"{self.spec.name}: all {self._max_workers} environments busy")
                self._condition.wait(remaining)
            if self._stopped:
                raise InvocationError(f"{self.spec.name}: the local stack is stopping")
            if self._idle:
                return self._idle.pop()
        return self._start_worker()

    def _start_worker(self) -> Worker:
        with self._condition:
            self._count += 1
        try:
            worker = Worker(self.spec, self._environment, self._log)
            with self._condition:
                self._all.add(worker)
            worker.wait_ready()
        except BaseException:
            with self._condition:
                self._count -= 1
                self._condition.notify()
            raise
        return worker

    def _release(self, worker: Worker) -> None:
        with self._condition:
            if worker.alive and not self._stopped:
                self._idle.append(worker)
            else:
                self._count -= 1
                self._all.discard(worker)
                if worker.alive:
                    worker.stop()
            self._condition.notify()

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            workers, self._all, self._idle = list(self._all), set(), []
            self._condition.notify_all()
        # Busy ones too: a worker finishes its event, then exits on the closed pipe (or is killed after 2 s).
        for worker in workers:
            worker.stop()
