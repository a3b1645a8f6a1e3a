"""Cold start of every function in template.yaml: its handler module and first-invocation wiring, vs boto3 alone.

Subject, per function, in a fresh interpreter laid out like Lambda (``bench.lambda_layout``): PYTHONPATH = the
function's CodeUri, then the layer as `sam build` makes it from layers/common, then the runtime's boto3 (/var/task,
/opt/python, the runtime), no site-packages (``python -S``: the dev virtualenv's ~90 extra distributions would make
pydantic's plugin scan cost ~60 ms that Lambda does not pay); the function's environment from the template
(intrinsics resolved to placeholder names), fake credentials and a region. Timed inside the child: ``import app``
plus the call of the function's wiring factory, because handlers build their boto3 clients lazily on the first
invocation.

Floor, in the same kind of fresh interpreter and environment: ``import boto3`` plus creating the very clients that
factory creates (recorded by an untimed probe run), i.e. what any Python Lambda talking to those services pays.
Interpreter start-up is outside both timings (the same for both, and it would flatter the ratio).

Bytecode is where Lambda has it: the standard library and the runtime's boto3 are compiled, the layer carries the
bytecode its build makes (layers/common/Makefile), the function's own module has none, and nothing is written
(PYTHONDONTWRITEBYTECODE): each side reports the modules it had to compile, which should be at most the function's
``app`` (none when a test run left its bytecode next to it). Subject and floor runs alternate (floor first on even
rounds), after warm-ups. The paired ratio (median of each subject run over its neighbouring floor run) is printed
too: on a shared machine it moves less with load than the ratio of medians.
Targets: webhook and notifier <= 1.5x, Repair API and replacer <= 1.8x; the webhook must not import httpx (nor the
X-Ray SDK). A missed target prints the heaviest imports (``python -X importtime``) of that function.

Run: `make bench-cold-start` (or PYTHONPATH=layers/common:. .venv/bin/python -m bench.bench_cold_start [--runs N])
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from bench.harness import Comparison, record, summarise
from bench.lambda_layout import python_path
from local.template import ROOT, FunctionSpec, Resolver, functions, load_template

# Each function's wiring factory (connection_repair.wiring), i.e. what its first invocation builds.
FACTORIES = {
    "WebhookFunction": "webhook.webhook_ingestor",
    "RepairApiFunction": "repair_api.repair_service",
    "ConnectionReplacerFunction": "replacer.connection_replacer",
    "NotifierFunction": "notifier.notifier",
    "ReconcilerFunction": "reconciler.reconciler",
    "OutboxSweeperFunction": "outbox_sweeper.outbox_sweep",
    "ContactFeedbackFunction": "contact_feedback.feedback_store",
    "UnsubscribeFunction": "unsubscribe.preferences_store",
}
TARGETS = {
    "WebhookFunction": 1.5,
    "NotifierFunction": 1.5,
    "RepairApiFunction": 1.8,
    "ConnectionReplacerFunction": 1.8,
    "ReconcilerFunction": 1.8,
    "OutboxSweeperFunction": 1.8,
    "ContactFeedbackFunction": 1.8,
    "UnsubscribeFunction": 1.8,
}
# Parameters without a usable default get placeholders; SenderEmail is set so the notifier builds its SES client.
PARAMETERS = {
    "JwtIssuer": "https://issuer.example.com",
    "JwtAudience": "app-client",
    "SenderEmail": "notifications@example.com",
}
# Where layers/common is read from: this tree, or another (--source) to compare with an earlier version.
SOURCE = {"layers": ROOT / "layers" / "common"}
# Modules a function should not load at cold start (they belong to rare paths or to TRACING_MODE=sdk).
WATCHED = ("httpx", "httpcore", "aws_xray_sdk")

# Modules imported from source (no bytecode found: with PYTHONDONTWRITEBYTECODE they are compiled on every start).
COMPILED = (
    "sorted(name for name, module in list(sys.modules.items())"
    " if getattr(module, '__cached__', None) and not os.path.exists(module.__cached__))"
)

SUBJECT = """
import importlib, json, os, sys, time
started = time.perf_counter()
module = importlib.import_module({module!r})
handler = getattr(module, {handler!r})
try:
    wiring = importlib.import_module("connection_repair.wiring." + {factory!r}.rpartition(".")[0])
except ModuleNotFoundError:  # a tree from before the wiring was split per function (--source)
    wiring = importlib.import_module("connection_repair.wiring")
getattr(wiring, {factory!r}.rpartition(".")[2])()
elapsed = time.perf_counter() - started
loaded = sorted({{name.split(".")[0] for name in sys.modules}} & set({watched!r}))
print(json.dumps({{"ms": elapsed * 1000, "loaded": loaded, "compiled": {compiled}}}))
"""

FLOOR = """
import json, os, sys, time
started = time.perf_counter()
import boto3
for service in {services!r}:
    boto3.client(service)
elapsed = time.perf_counter() - started
print(json.dumps({{"ms": elapsed * 1000, "compiled": {compiled}}}))
"""

# Untimed: which clients the factory creates, so the floor creates the same ones.
PROBE = """
import importlib, json
import boto3
created = []
real_client = boto3.client
def client(service, *args, **kwargs):
    created.append(service)
    return real_client(service, *args, **kwargs)
boto3.client = client
importlib.import_module({module!r})
try:
    wiring = importlib.import_module("connection_repair.wiring." + {factory!r}.rpartition(".")[0])
except ModuleNotFoundError:  # a tree from before the wiring was split per function (--source)
    wiring = importlib.import_module("connection_repair.wiring")
getattr(wiring, {factory!r}.rpartition(".")[2])()
print(json.dumps(created))
"""


def lambda_environment(spec: FunctionSpec) -> dict[str, str]:
    """What Lambda gives the process: the template's variables, the runtime's own, credentials, no config files."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "PYTHONPATH": os.pathsep.join(python_path(spec.code_dir, SOURCE["layers"])),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "cold-start",
        "AWS_SECRET_ACCESS_KEY": "cold-start",
        "AWS_SESSION_TOKEN": "cold-start",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        # Lambda has no ~/.aws files; do not let botocore read the developer's.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        # Lambda's /opt and /var/task are read-only: what has no bytecode is compiled on every cold start.
        "PYTHONDONTWRITEBYTECODE": "1",
        **spec.environment,
    }


def _run(code: str, spec: FunctionSpec, *options: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-S", *options, "-c", code],
        env=lambda_environment(spec),
        cwd=spec.code_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode:
        raise SystemExit(f"{spec.name}: child failed\n{result.stderr}")
    return result


def _last_json(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    document: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return document


def heaviest_imports(spec: FunctionSpec, subject: str, count: int = 12) -> list[tuple[str, float]]:
    """Top-level imports under the handler by cumulative time (``-X importtime``; it inflates every figure alike)."""
    stderr = _run(subject, spec, "-X", "importtime").stderr
    rows: list[tuple[str, float]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|")
        if cumulative.strip().isdigit():
            depth = (len(name) - len(name.lstrip())) // 2
            if depth <= 3:
                rows.append((name.rstrip(), int(cumulative) / 1000))
    return sorted(rows, key=lambda row: row[1], reverse=True)[:count]


@dataclass(frozen=True)
class ColdStart:
    comparison: Comparison
    paired: float  # median of each subject run over its neighbouring floor run
    services: list[str]  # the clients the floor creates
    loaded: list[str]  # WATCHED modules the subject loaded
    compiled: dict[str, list[str]]  # per side, modules imported without bytecode


def subject_code(spec: FunctionSpec) -> str:
    module, handler = spec.handler.rsplit(".", 1)
    return SUBJECT.format(
        module=module, handler=handler, factory=FACTORIES[spec.name], watched=WATCHED, compiled=COMPILED
    )


def measure(spec: FunctionSpec, *, runs: int, warmup: int) -> ColdStart:
    module = spec.handler.rsplit(".", 1)[0]
    services: list[str] = json.loads(
        _run(PROBE.format(module=module, factory=FACTORIES[spec.name]), spec).stdout.strip().splitlines()[-1]
    )
    subject = subject_code(spec)
    floor = FLOOR.format(services=services, compiled=COMPILED)
    timings: dict[str, list[float]] = {"subject": [], "floor": []}
    compiled: dict[str, set[str]] = {"subject": set(), "floor": set()}
    loaded: set[str] = set()
    for round_number in range(warmup + runs):
        order = [("floor", floor), ("subject", subject)]
        for side, code in order if round_number % 2 == 0 else reversed(order):
            document = _last_json(_run(code, spec))
            compiled[side].update(str(name) for name in document["compiled"])  # type: ignore[attr-defined]
            if side == "subject":
                loaded.update(str(name) for name in document["loaded"])  # type: ignore[attr-defined]
            if round_number >= warmup:
                timings[side].append(float(document["ms"]))  # type: ignore[arg-type]
    subject_ms, floor_ms = timings["subject"], timings["floor"]
    comparison = summarise(f"cold_start_{spec.name}", subject_ms, floor_ms, target=TARGETS.get(spec.name, 1.8))
    paired = round(statistics.median(s / f for s, f in zip(subject_ms, floor_ms, strict=True)), 3)
    return ColdStart(
        comparison, paired, services, sorted(loaded), {side: sorted(names) for side, names in compiled.items()}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15, help="timed runs of subject and of floor per function")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--only", help="one function's logical id")
    parser.add_argument(
        "--source",
        type=Path,
        help="measure another tree's functions/ and layers/common/ (e.g. `git worktree add` of an earlier commit); "
        "prints only, results.json untouched",
    )
    arguments = parser.parse_args()

    template = load_template()
    specs = functions(template, Resolver(template, stack_name="connection-repair", parameter_overrides=PARAMETERS))
    if arguments.source:
        source = arguments.source.resolve()
        SOURCE["layers"] = source / "layers" / "common"
        specs = [replace(spec, code_dir=source / spec.code_dir.relative_to(ROOT)) for spec in specs]
    unknown = [spec.name for spec in specs if spec.name not in FACTORIES]
    if unknown:
        raise SystemExit(f"add the wiring factory of {unknown} to FACTORIES in {Path(__file__).name}")
    comparisons: list[Comparison] = []
    details: dict[str, object] = {}
    for spec in specs:
        if arguments.only and spec.name != arguments.only:
            continue
        result = measure(spec, runs=arguments.runs, warmup=arguments.warmup)
        comparison = result.comparison
        comparisons.append(comparison)
        print(
            f"{comparison.line()}  [floor: boto3 + {', '.join(result.services)}; paired ratio p50 {result.paired:.2f}]"
        )
        if result.loaded:
            print(f"  {spec.name} loads at cold start: {', '.join(result.loaded)}")
        for side, names in result.compiled.items():
            if names:
                print(f"  {spec.name} {side} compiles at every cold start (no bytecode): {', '.join(names)}")
        if not comparison.met:
            print(f"  {spec.name}: heaviest imports (python -X importtime, cumulative ms):")
            for module, milliseconds in heaviest_imports(spec, subject_code(spec)):
                print(f"    {milliseconds:7.1f}  {module}")
        details[spec.name] = {
            "floor_clients": result.services,
            "watched_modules_loaded": result.loaded,
            # Ratio of each subject run to its neighbouring floor run: less sensitive to load that changes slowly.
            "paired_ratio_p50": result.paired,
            # Modules without bytecode, compiled at every cold start (the function's own app module is expected).
            "compiled_at_import": result.compiled,
        }
    webhook_clean = not details.get("WebhookFunction", {}).get("watched_modules_loaded")  # type: ignore[attr-defined]
    if arguments.source:
        return
    if "WebhookFunction" in details:
        print(f"webhook cold start imports neither httpx nor the X-Ray SDK: {'ok' if webhook_clean else 'MISSED'}")
    record(comparisons, extra={"cold_start": {"functions": details, "webhook_without_httpx": webhook_clean}})


if __name__ == "__main__":
    main()
