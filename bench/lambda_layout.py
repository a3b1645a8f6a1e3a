"""What a function's process sees in Lambda, rebuilt locally: the built layer, and the runtime's own boto3.

Lambda's python3.12 runtime puts ``/var/task`` (the function's code), ``/opt/python`` (the layer, as ``sam build``
makes it) and the runtime's packages (boto3, botocore, s3transfer, jmespath, dateutil, urllib3, six) on the path, and
nothing else. The development virtualenv has ~90 distributions more (moto, pytest, mypy...), and that is not only
untidy: pydantic scans every installed distribution's entry points for plugins when it builds its first model, which
costs ~60 ms in .venv and a fraction of that in Lambda. Benchmarks that time imports use this layout instead.

Bytecode as in Lambda: the standard library and the runtime's packages are compiled, the layer ships the bytecode its
build made (layers/common/Makefile), the function's own code has none. Children run with PYTHONDONTWRITEBYTECODE, so
what a cold start compiles, it compiles on every run, as a read-only Lambda does.
"""

from __future__ import annotations

import compileall
import os
import py_compile
import shutil
import subprocess
import sysconfig
from functools import cache
from pathlib import Path

from local.template import ROOT

# A build of our own (same `sam build` as `make build`): .aws-sam/build is rewritten whenever someone runs
# `make build` or `make test`, and a benchmark must not read a layer that is half rewritten.
BUILD = ROOT / ".aws-sam" / "bench-build"
LAYER = BUILD / "CommonLayer"
LAYER_SOURCE = ROOT / "layers" / "common"
# The runtime's packages besides the standard library (distribution and import names).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "python_dateutil", "urllib3", "six")
RUNTIME_DIR = ROOT / ".aws-sam" / "bench-runtime"
# Another tree's connection_repair (bench_cold_start --source), compiled the way the layer's build compiles it.
OTHER_SOURCE = ROOT / ".aws-sam" / "bench-source"


def _newest(path: Path) -> float:
    return max((item.stat().st_mtime for item in path.rglob("*") if "__pycache__" not in item.parts), default=0.0)


@cache
def built_layer() -> Path:
    """The layer as ``sam build`` makes it (its ``python/`` is /opt/python), rebuilt when layers/common is newer.

    Checked once per bench run (every child process of a run then imports the same layer)."""
    if not (LAYER / "python").is_dir() or _newest(LAYER_SOURCE) > _newest(LAYER):
        print(f"building the layer: sam build CommonLayer --build-dir {BUILD.relative_to(ROOT)}")
        subprocess.run(["make", "-s", str(ROOT / ".venv-tools" / ".installed")], cwd=ROOT, check=True)
        # Not --cached: SAM keeps the cache's source hashes in .aws-sam/build.toml, shared with `make build`, and
        # would take the layer for up to date after `make build` saw the same sources, and copy a stale build.
        build = subprocess.run(
            [str(ROOT / ".venv-tools" / "bin" / "sam"), "build", "CommonLayer", "--build-dir", str(BUILD)],
            cwd=ROOT,
            check=False,
            capture_output=True,
            text=True,
            # As `make build`: the runtime's Python (3.12) first on PATH, a region, no telemetry.
            env=os.environ
            | {
                "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                "SAM_CLI_TELEMETRY": "0",
            },
        )
        if build.returncode:
            raise SystemExit(f"sam build CommonLayer failed:\n{build.stdout}{build.stderr}")
    return LAYER


def runtime_packages() -> Path:
    """A folder holding (links to) only the packages the Lambda runtime ships, from this interpreter's site."""
    site = Path(sysconfig.get_paths()["purelib"])
    RUNTIME_DIR.mkdir(parents=True, exist_ok=True)
    for entry in site.iterdir():
        name = entry.name.removesuffix(".py").split("-", 1)[0].lower()
        if name in RUNTIME_PACKAGES:
            link = RUNTIME_DIR / entry.name
            if not link.is_symlink():
                link.symlink_to(entry)
    return RUNTIME_DIR


_NO_BYTECODE = shutil.ignore_patterns("__pycache__")


@cache
def compiled_package(layer_source: Path) -> Path:
    """A folder holding ``layer_source``'s connection_repair with the bytecode the layer build would give it."""
    target = OTHER_SOURCE / "python"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(layer_source / "connection_repair", target / "connection_repair", ignore=_NO_BYTECODE)
    compileall.compile_dir(target, quiet=1, workers=0, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    return target


def python_path(code_dir: Path, layer_source: Path = LAYER_SOURCE) -> list[str]:
    """sys.path of a function in Lambda: its code, the layer (built from ``layer_source``), the runtime's packages."""
    package = [] if layer_source == LAYER_SOURCE else [str(compiled_package(layer_source))]
    return [str(code_dir), *package, str(built_layer() / "python"), str(runtime_packages())]
