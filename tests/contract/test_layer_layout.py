"""The layer's layout holds: no import cycle, dependencies that point one way, modules a newcomer can read."""

from __future__ import annotations

import ast
from pathlib import Path

LAYER = Path(__file__).resolve().parents[2] / "layers" / "common"
PACKAGE = LAYER / "connection_repair"
CAPABILITIES = (
    "ingestion",
    "outbox",
    "repair",
    "replacement",
    "notify",
    "messages",
    "preferences",
    "reconcile",
    "erasure",
    "replay",
)
MAX_LINES = 350


def module_name(path: Path) -> str:
    parts = list(path.relative_to(LAYER).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every layer module ``path`` imports, wherever the import statement is (functions, TYPE_CHECKING blocks)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            # ``from connection_repair.ingestion import signature`` imports a module, not a name.
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("connection_repair.")} & set(GRAPH_NODES)


GRAPH_NODES = [module_name(path) for path in sorted(PACKAGE.rglob("*.py"))]
GRAPH = {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def part(module: str) -> str:
    """The top-level package of a layer module: domain, platform, wiring, adapters or a capability."""
    return module.split(".")[1] if "." in module else ""


def test_the_layer_has_no_import_cycle():
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        path.append(module)
        for imported in sorted(GRAPH[module]):
            visit(imported)
        path.pop()
        done.add(module)

    for module in GRAPH:
        visit(module)


def test_the_domain_depends_on_nothing_but_itself_and_the_clock():
    for module, imported in GRAPH.items():
        if part(module) == "domain":
            outside = {name for name in imported if part(name) != "domain"} - {"connection_repair.platform.clock"}
            assert not outside, f"{module} imports {sorted(outside)}"


def test_capabilities_know_ports_not_adapters_and_no_other_capabilitys_use_case():
    for module, imported in GRAPH.items():
        if part(module) not in CAPABILITIES:
            continue
        for name in imported:
            assert part(name) not in ("adapters", "wiring"), f"{module} imports {name}"
            if part(name) in CAPABILITIES and part(name) != part(module):
                assert not name.endswith(".service"), f"{module} imports another capability's use case {name}"


def test_adapters_implement_ports_and_never_import_a_use_case_or_the_wiring():
    for module, imported in GRAPH.items():
        if part(module) == "adapters":
            wrong = {name for name in imported if name.endswith(".service") or part(name) == "wiring"}
            assert not wrong, f"{module} imports {sorted(wrong)}"


def test_only_the_wiring_builds_adapters_and_nothing_in_the_layer_imports_the_wiring():
    for module, imported in GRAPH.items():
        if part(module) in ("wiring", "adapters"):
            continue
        wrong = {name for name in imported if part(name) in ("wiring", "adapters")}
        assert not wrong, f"{module} imports {sorted(wrong)}"


def test_every_module_is_short_enough_to_read_in_one_sitting():
    long = {
        module_name(path): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_graph_is_the_layer():
    # A walk that found nothing would pass every rule above.
    assert len(GRAPH) > 40
    assert "connection_repair.domain.connection" in GRAPH["connection_repair.ingestion.ingest"]
    assert sum(len(imported) for imported in GRAPH.values()) > 100
