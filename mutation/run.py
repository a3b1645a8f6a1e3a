"""`make mutation`: mutmut over the modules where a wrong line loses data, sends twice or lets someone in
(`make mutation-all`: and the wider groups).

mutmut 3 derives a mutant's module from its file's path (``src/`` or the root), while the layer's package lives in
``layers/common/``. So each group runs in a staged copy (``.mutation/<group>/``): the package under ``src/``,
everything the tests read beside it, and a pyproject with mutmut's settings. mutmut runs, for each mutant, only the
group's tests that call the mutated function (from its own coverage pass), fastest first, stopping at the first
failure.

Writes ``mutation/results.json`` (score per module, survivors by name) and prints the table; the survivors, by the
reason each is harmless or as still open, are in docs/mutation.md. A measurement, not a gate: it exits 0 whatever
the score.
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / ".mutation"
RESULTS = ROOT / "mutation" / "results.json"
PACKAGE = ROOT / "layers" / "common" / "connection_repair"

# The modules under test, relative to the package, in small groups that each run with the tests written for them
# (mutmut then runs, of those, the ones that call the mutated function): ordering and state transitions; signature
# verification and the envelope; the ingest path and the outbox; the DynamoDB conditions and transactions;
# notification claims and policy, and their store; the Repair API's ownership checks and the optimistic retry (the
# core groups, `CORE` below); and for `make mutation-all`, how messages are worded and sent, institution incidents,
# reconciliation and replay. Small groups keep a run short: a surviving mutant costs every selected test that calls its
# function, and a function every test calls (an item codec, the transition) would otherwise cost the whole suite.
FAULT_MATRIX = "tests/reliability/test_fault_matrix.py::"
GROUPS: dict[str, tuple[list[str], list[str]]] = {
    "transitions": (
        ["domain/transitions.py"],
        [
            "tests/unit/domain/test_transitions.py",
            "tests/unit/domain/test_silent_update.py",
            "tests/unit/domain/test_failed_repairs_and_replacement.py",
            "tests/unit/domain/test_delivery_orders.py",
            "tests/integration/test_silent_update_condition.py",
        ],
    ),
    "signature": (
        ["ingestion/signature.py", "ingestion/webhook.py"],
        [
            "tests/unit/ingestion",
            "tests/unit/domain/test_transitions.py",
            "tests/integration/test_webhook_handler.py",
        ],
    ),
    "ingestion": (
        ["ingestion/service.py", "ingestion/ingest.py", "outbox/outbox.py", "outbox/sweep.py"],
        [
            "tests/unit/ingestion/test_ordered_at.py",
            "tests/integration/test_outbox_sweep.py",
            "tests/integration/test_ingest_guarantees.py",
            "tests/integration/test_webhook_handler.py",
            "tests/integration/test_webhook_forwarding.py",
            "tests/integration/test_connection_store.py",
            FAULT_MATRIX + "test_a_throttled_outbox_clear_after_publishing_is_retried_and_published_at_least_once",
            FAULT_MATRIX
            + "test_eventbridge_partial_failure_is_not_acknowledged_and_the_retry_publishes_what_is_pending",
        ],
    ),
    "store": (
        [
            "adapters/dynamodb/connection_store.py",
            "adapters/dynamodb/connections.py",
            "adapters/dynamodb/events.py",
            "adapters/dynamodb/errors.py",
            "platform/aws.py",
        ],
        [
            "tests/integration/test_connection_store.py",
            "tests/integration/test_silent_update_condition.py",
            "tests/integration/test_ingest_guarantees.py",
            "tests/integration/test_outbox_sweep.py",
            "tests/unit/platform/test_aws.py",
            FAULT_MATRIX + "test_store_faults_on_ingest_write_nothing_and_the_retry_applies_once",
            FAULT_MATRIX + "test_a_throttled_outbox_clear_after_publishing_is_retried_and_published_at_least_once",
        ],
    ),
    "notify": (
        [
            "notify/service.py",
            "notify/policy.py",
            "notify/schedule.py",
            "notify/notices.py",
            "notify/claims.py",
        ],
        [
            "tests/unit/notify/test_notification_policy.py",
            "tests/integration/test_link_again_messages.py",
            "tests/integration/test_notifier.py",
            "tests/integration/test_notifier_races.py",
            "tests/integration/test_notifier_handler.py",
            "tests/integration/test_notifier_retries_and_backlog.py",
            "tests/reliability/test_notifier_fault_matrix.py",
            "tests/integration/test_send_rate.py",
            # The notifier's part in incidents: counting breaks and ends, releasing what an incident held.
            "tests/integration/test_incidents.py",
            # A customer's own locale reaching the message.
            "tests/integration/test_message_templates.py::test_a_spanish_speaking_customer_gets_email_and_sms_in_spanish",
        ],
    ),
    "notify-store": (
        [
            "adapters/dynamodb/notifications.py",
            "adapters/dynamodb/notification_items.py",
            "adapters/dynamodb/due_list.py",
        ],
        [
            "tests/integration/test_notification_store.py",
            "tests/integration/test_due_list.py",
            "tests/integration/test_notifier.py",
            "tests/integration/test_notifier_races.py",
            "tests/integration/test_notifier_retries_and_backlog.py",
            "tests/reliability/test_notifier_fault_matrix.py",
            # Messages held by an incident and released at its end (`hold`, `due_exactly`).
            "tests/integration/test_incidents.py",
        ],
    ),
    "incidents": (
        [
            "domain/incident.py",
            "notify/incidents.py",
            "notify/pacing.py",
            "adapters/dynamodb/incidents.py",
            "adapters/dynamodb/send_rate.py",
        ],
        [
            "tests/unit/domain/test_incident.py",
            "tests/integration/test_incidents.py",
            "tests/integration/test_send_rate.py",
            "tests/reliability/test_notifier_fault_matrix.py",
        ],
    ),
    "reconcile": (
        [
            "reconcile/service.py",
            "reconcile/drift.py",
            "reconcile/observation.py",
            "adapters/dynamodb/reconciliation.py",
        ],
        [
            "tests/unit/reconcile",
            # What an observation stores, read back (replay reads it as ingestion did).
            "tests/unit/replay",
            "tests/integration/test_reconciliation.py",
            "tests/integration/test_connection_store.py",
        ],
    ),
    "replay": (
        ["replay/recompute.py", "replay/service.py", "adapters/dynamodb/history.py"],
        ["tests/unit/replay", "tests/integration/test_replay.py"],
    ),
    "messages": (
        ["notify/compose.py", "notify/delivery.py", "adapters/sending.py"],
        [
            "tests/unit/messages/test_messages.py",
            "tests/unit/adapters/test_sending.py",
            "tests/integration/test_message_templates.py",
            "tests/integration/test_notifier.py",
            "tests/integration/test_link_again_messages.py",
            "tests/reliability/test_notifier_fault_matrix.py",
        ],
    ),
    "repair": (
        ["repair/service.py", "platform/retry.py"],
        [
            "tests/unit/repair/test_repair_service.py",
            "tests/unit/platform/test_retry.py",
            "tests/integration/test_repair_api_handler.py",
            "tests/integration/test_connection_replacement_flow.py",
            "tests/integration/test_incidents.py::test_the_connection_view_carries_its_institutions_incident",
        ],
    ),
}
# `make mutation` runs these: the modules where a wrong line loses data, sends a message twice or lets someone in
# (35 minutes on 2 cores). `make mutation-all` adds the others: how messages are worded and sent, institution
# incidents, reconciliation.
CORE = ["transitions", "signature", "ingestion", "store", "notify", "notify-store", "repair"]
# Left out of every group: the 120 delivery orders of five events (a minute under mutmut; the ordering unit tests
# and the property tests kill what it would), and everything not listed above: e2e (a whole local stack per test),
# the fuzzers and the contract generator (they assert "no 5xx", which these mutants do not reach).
DESELECTED = [
    "tests/integration/test_ingest_guarantees.py::test_every_ordering_of_five_status_changes_ends_in_the_state_of_the_newest",
]
# Lines not mutated: log calls (their wording and fields are not what these modules promise; that no secret reaches
# a log is asserted by tests/reliability/test_log_hygiene.py); the strongly consistent reads (moto always reads
# consistently and DynamoDB's replication lag cannot be staged, so dropping `ConsistentRead` survives every test);
# an invocation's counters, which only metrics read (most are raised once on a fresh Outcome, where `+=` and `=` are
# the same: each such survivor cost a minute of every test of the notifier); and `zip(strict=True)`, an assertion
# over lists built from each other.
SKIP_LINES = [
    r"^\s*logger\.(debug|info|warning|error|exception)\(",
    r"ConsistentRead",
    r"^\s*outcome\.\w+(\[[\w.\"]+\])? \+= ",
    r"zip\(.*strict=True\)",
]
# What the tests read besides the package.
ALSO_COPY = ["functions", "local", "ops", "tests", "events", "docs", "template.yaml", "env.json", "samconfig.toml"]
TARGET = 0.90
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")

PYPROJECT = """\
[tool.pytest.ini_options]
pythonpath = ["src", "."]
addopts = "-p no:cacheprovider --hypothesis-profile=mutation {deselect}"
markers = ["e2e: starts the local stack on free ports"]
filterwarnings = ["error::pytest.PytestUnraisableExceptionWarning"]

[tool.mutmut]
source_paths = ["src"]
only_mutate = {only_mutate}
also_copy = {also_copy}
pytest_add_cli_args_test_selection = {tests}
do_not_mutate_patterns = {skip_lines}
use_git_change_detection = false
# A hung mutant is stopped after (its tests' time + 1 s) x 8 of CPU, not mutmut's x 30: every test here is bounded.
timeout_multiplier = 4.0
# A mutant that mypy --strict rejects cannot pass `make test`: it is caught before any test runs.
type_check_command = {type_check}

[tool.mypy]
python_version = "3.12"
strict = true
files = ["src/connection_repair"]
mypy_path = "src"
explicit_package_bases = true
plugins = ["pydantic.mypy"]
# mutmut's generated lines carry ignores that only some mutants use.
warn_unused_ignores = false
"""


def stage(group: str) -> Path:
    """A fresh copy of what one group's run needs, laid out as mutmut expects."""
    modules, tests = GROUPS[group]
    root = STAGE / group
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(PACKAGE, root / "src" / "connection_repair", ignore=IGNORE)
    refresh_tests(root)
    (root / "pyproject.toml").write_text(
        PYPROJECT.format(
            deselect=" ".join(f"--deselect={test}" for test in DESELECTED),
            only_mutate=json.dumps([f"src/connection_repair/{module}" for module in modules]),
            also_copy=json.dumps(ALSO_COPY),
            tests=json.dumps(tests),
            skip_lines=json.dumps(SKIP_LINES),
            # This interpreter's mypy: `make mutation` does not put the virtualenv on PATH.
            type_check=json.dumps([sys.executable, "-m", "mypy", "--output", "json"]),
        )
    )
    return root


def refresh_tests(root: Path) -> None:
    """The project's current tests (and what they read) into a staged group, keeping its mutants and results."""
    for name in ALSO_COPY:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=IGNORE, dirs_exist_ok=True)
        else:
            shutil.copy2(source, root / name)


def run_mutmut(root: Path, mutants: list[str] | None = None) -> None:
    environment = os.environ | {"PYTHONDONTWRITEBYTECODE": "1"}
    environment.pop("PYTHONPATH", None)
    subprocess.run(  # noqa: S603 (our own interpreter and arguments)
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(os.cpu_count() or 2), *(mutants or [])],
        cwd=root,
        env=environment,
        check=True,
    )


def status(exit_code: int | None) -> str:
    from mutmut.stats import status_by_exit_code

    return str(status_by_exit_code[exit_code])


def summary(meta: Path) -> dict[str, Any]:
    """One module's mutants by outcome. Killed: a test failed, the tests hung (timeout), or mypy --strict refused the
    mutant (it could not pass `make test`)."""
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
    by_status = Counter(status(code) for code in codes.values())
    killed = by_status["killed"] + by_status["timeout"] + by_status["caught by type check"]
    return {
        "mutants": len(codes),
        "killed": killed,
        "score": round(killed / len(codes), 4) if codes else None,
        "checked": len(codes) - by_status["not checked"],
        "by_status": dict(sorted(by_status.items())),
        # Survived, or reached by no test; "not checked" (a run stopped early) is counted in by_status only.
        "survivors": sorted(name for name, code in codes.items() if status(code) in ("survived", "no tests")),
    }


def collect(seconds: dict[str, float]) -> dict[str, object]:
    modules = {
        module: {"group": group} | summary(STAGE / group / "mutants" / "src" / "connection_repair" / f"{module}.meta")
        for group, (group_modules, _) in GROUPS.items()
        for module in group_modules
    }

    def total(groups: list[str]) -> dict[str, object]:
        chosen = [m for m in modules.values() if m["group"] in groups]
        mutants = sum(int(m["mutants"]) for m in chosen)
        killed = sum(int(m["killed"]) for m in chosen)
        return {"mutants": mutants, "killed": killed, "score": round(killed / mutants, 4) if mutants else None}

    return {
        "tool": "mutmut",
        "seconds": {group: round(value) for group, value in seconds.items()},
        "target": TARGET,
        # The target is for the core groups (`make mutation`); "all" adds the wider ones' last run.
        "total": total(CORE),
        "all": total(list(GROUPS)),
        "modules": modules,
    }


def report(results: dict[str, object]) -> None:
    modules: dict[str, dict[str, object]] = results["modules"]  # type: ignore[assignment]
    print(f"\n{'module':40} {'mutants':>8} {'killed':>7} {'score':>7}")
    for module, data in modules.items():
        score = data["score"]
        shown = f"{score:.1%}" if isinstance(score, float) else "-"
        print(f"{module:40} {data['mutants']:>8} {data['killed']:>7} {shown:>7}")
    total: dict[str, object] = results["total"]  # type: ignore[assignment]
    score = total["score"]
    verdict = "MET" if isinstance(score, float) and score >= TARGET else "MISSED"
    shown = f"{score:.1%}" if isinstance(score, float) else "-"
    print(f"{'core groups':40} {total['mutants']:>8} {total['killed']:>7} {shown:>7}  target {TARGET:.0%}: {verdict}")
    seconds: dict[str, int] = results["seconds"]  # type: ignore[assignment]
    timing = ", ".join(f"{group} {value} s" for group, value in seconds.items())
    core = sum(value for group, value in seconds.items() if group in CORE)
    print(f"time: {timing} (core groups {core / 60:.0f} min)")
    print(f"survivors by name in {RESULTS.relative_to(ROOT)}, explained in docs/mutation.md")


def survivors_of(group: str) -> list[str]:
    root = STAGE / group / "mutants" / "src" / "connection_repair"
    return [name for module in GROUPS[group][0] for name in summary(root / f"{module}.meta")["survivors"]]


def show(group: str) -> None:
    """Each survivor of ``group``'s last run with the lines its mutation changed."""
    for name in survivors_of(group):
        shown = subprocess.run(  # noqa: S603 (our own interpreter and arguments)
            [sys.executable, "-m", "mutmut", "show", name],
            cwd=STAGE / group,
            env=os.environ | {"PYTHONDONTWRITEBYTECODE": "1"},
            capture_output=True,
            text=True,
            check=False,
        )
        changed = [
            line.strip()
            for line in shown.stdout.splitlines()
            if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))
        ]
        print(f"{name}: {' | '.join(changed)}")


def main() -> None:
    """Group names: run only those groups (the others' results are read from their last run). ``--resume``: go on
    with an interrupted run. ``--report``: read the last run's results again. ``--survivors``: after adding tests,
    test again only the last run's survivors. ``--show``: print the last run's survivors with what each changed.
    ``--all``: every group, not only the core ones."""
    arguments = sys.argv[1:]
    seconds: dict[str, float] = {}
    if RESULTS.exists():
        seconds = {k: float(v) for k, v in json.loads(RESULTS.read_text()).get("seconds", {}).items()}
    groups = [name for name in arguments if name in GROUPS] or (list(GROUPS) if "--all" in arguments else CORE)
    if "--show" in arguments:
        for group in groups:
            show(group)
        return
    if "--survivors" in arguments:
        for group in groups:
            survivors = survivors_of(group)
            if survivors:
                refresh_tests(STAGE / group)
                run_mutmut(STAGE / group, survivors)
    elif "--report" not in arguments:
        for group in groups:
            started = time.monotonic()
            resume = "--resume" in arguments and (STAGE / group / "mutants").exists()
            run_mutmut(STAGE / group if resume else stage(group))
            seconds[group] = time.monotonic() - started + (seconds.get(group, 0.0) if resume else 0.0)
    results = collect(seconds)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    report(results)


if __name__ == "__main__":
    main()
