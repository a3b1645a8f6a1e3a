"""`make mutation`: mutmut over the modules where a wrong line loses data, sends twice or lets someone in.

mutmut 3 derives a mutant's module from its file's path (``src/`` or the root), while the layer's package lives in
``layers/common/``. So the run happens in a staged copy (``.mutation/``): the package under ``src/``, everything the
selected tests read beside it, and a pyproject with mutmut's settings. mutmut runs, for each mutant, only the tests
that call the mutated function (from its own coverage pass), fastest first.

Writes ``mutation/results.json`` (score per module, survivors by name) and prints the table; the survivors and why
each is harmless are in docs/mutation.md. A measurement, not a gate: it exits 0 whatever the score.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / ".mutation"
RESULTS = ROOT / "mutation" / "results.json"
PACKAGE = ROOT / "layers" / "common" / "connection_repair"

# The modules under test, relative to the package: ordering and state transitions, signature verification, the
# ingest path and its DynamoDB conditions, the outbox, notification claims and policy, ownership checks.
MODULES = [
    "connection_state.py",
    "signature.py",
    "ingest.py",
    "adapters/dynamodb_store.py",
    "outbox.py",
    "notifications.py",
    "adapters/notification_store.py",
    "repair.py",
]
# The tests that can kill those mutants. Left out: e2e (a whole local stack per test), the fuzzers and the
# contract generator (they assert "no 5xx", which these mutants do not touch), and the Meld client's own tests.
TESTS = [
    "tests/unit",
    "tests/integration/test_alarm_metrics.py",
    "tests/integration/test_connection_replacement_flow.py",
    "tests/integration/test_fault_matrix.py",
    "tests/integration/test_ingest_guarantees.py",
    "tests/integration/test_log_hygiene.py",
    "tests/integration/test_notifier.py",
    "tests/integration/test_notifier_handler.py",
    "tests/integration/test_notification_store.py",
    "tests/integration/test_notifier_races.py",
    "tests/integration/test_quiet_update_condition.py",
    "tests/integration/test_repair_api_handler.py",
    "tests/integration/test_secrets.py",
    "tests/integration/test_webhook_handler.py",
]
EXCLUDED_TESTS = ["tests/unit/test_cold_imports.py", "tests/unit/test_local_stack.py", "tests/e2e"]
# What the tests read besides the package.
ALSO_COPY = ["functions", "local", "tests", "events", "docs", "template.yaml", "env.json", "samconfig.toml"]
TARGET = 0.90
# Lines not mutated: log calls (their wording and fields are not what these modules promise; that no secret reaches
# a log is asserted by tests/integration/test_log_hygiene.py).
SKIP_LINES = [r"^\s*logger\.(debug|info|warning|error|exception)\("]

PYPROJECT = """\
[tool.pytest.ini_options]
pythonpath = ["src", "."]
addopts = "-p no:cacheprovider {ignores}"
markers = ["e2e: starts the local stack on free ports"]
filterwarnings = ["error::pytest.PytestUnraisableExceptionWarning"]

[tool.mutmut]
source_paths = ["src"]
only_mutate = {only_mutate}
also_copy = {also_copy}
pytest_add_cli_args_test_selection = {tests}
do_not_mutate_patterns = {skip_lines}
use_git_change_detection = false
"""


def stage() -> None:
    """A fresh copy of what the run needs, laid out as mutmut expects."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    shutil.copytree(PACKAGE, STAGE / "src" / "connection_repair", ignore=ignore)
    for name in ALSO_COPY:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, STAGE / name, ignore=ignore)
        else:
            shutil.copy2(source, STAGE / name)
    ignores = " ".join(f"--ignore={path}" for path in EXCLUDED_TESTS)
    (STAGE / "pyproject.toml").write_text(
        PYPROJECT.format(
            ignores=ignores,
            only_mutate=json.dumps([f"src/connection_repair/{module}" for module in MODULES]),
            also_copy=json.dumps(ALSO_COPY),
            tests=json.dumps(TESTS),
            skip_lines=json.dumps(SKIP_LINES),
        )
    )


def run_mutmut() -> float:
    started = time.monotonic()
    environment = os.environ | {"PYTHONDONTWRITEBYTECODE": "1"}
    environment.pop("PYTHONPATH", None)
    subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(os.cpu_count() or 2)],
        cwd=STAGE,
        env=environment,
        check=True,
    )
    return time.monotonic() - started


def status(exit_code: int | None) -> str:
    from mutmut.stats import status_by_exit_code  # type: ignore[import-not-found]

    return str(status_by_exit_code[exit_code])


def collect(seconds: float) -> dict[str, object]:
    modules: dict[str, object] = {}
    for module in MODULES:
        meta = STAGE / "mutants" / "src" / "connection_repair" / f"{module}.meta"
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        by_status = Counter(status(code) for code in codes.values())
        # Timeouts count as killed (the mutant made the tests hang: the suite noticed).
        killed = by_status["killed"] + by_status["timeout"]
        survivors = sorted(name for name, code in codes.items() if status(code) != "killed" and status(code) != "timeout")
        total = len(codes)
        modules[module] = {
            "mutants": total,
            "killed": killed,
            "score": round(killed / total, 4) if total else None,
            "by_status": dict(sorted(by_status.items())),
            "survivors": survivors,
        }
    total = sum(int(m["mutants"]) for m in modules.values())  # type: ignore[index, call-overload]
    killed = sum(int(m["killed"]) for m in modules.values())  # type: ignore[index, call-overload]
    return {
        "tool": "mutmut",
        "seconds": round(seconds),
        "target": TARGET,
        "total": {"mutants": total, "killed": killed, "score": round(killed / total, 4) if total else None},
        "modules": modules,
    }


def report(results: dict[str, object]) -> None:
    print(f"\n{'module':34} {'mutants':>8} {'killed':>7} {'score':>7}")
    modules: dict[str, dict[str, object]] = results["modules"]  # type: ignore[assignment]
    for module, data in modules.items():
        score = data["score"]
        shown = f"{score:.1%}" if isinstance(score, float) else "-"
        print(f"{module:34} {data['mutants']:>8} {data['killed']:>7} {shown:>7}")
    total: dict[str, object] = results["total"]  # type: ignore[assignment]
    score = total["score"]
    verdict = "MET" if isinstance(score, float) and score >= TARGET else "MISSED"
    shown = f"{score:.1%}" if isinstance(score, float) else "-"
    print(f"{'all':34} {total['mutants']:>8} {total['killed']:>7} {shown:>7}  target {TARGET:.0%}: {verdict}")
    print(f"{results['seconds']} s; survivors by name in {RESULTS.relative_to(ROOT)}, explained in docs/mutation.md")


def main() -> None:
    only_collect = "--report" in sys.argv[1:]
    seconds = 0.0
    if not only_collect:
        stage()
        seconds = run_mutmut()
    results = collect(seconds)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    report(results)


if __name__ == "__main__":
    main()
