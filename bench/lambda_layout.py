"""What a function's process sees in Lambda, rebuilt locally: the built layer, and the runtime's own boto3.

Lambda's python3.12 runtime puts ``/var/task`` (the function's code), ``/opt/python`` (the layer, as ``sam build``
makes it) and the runtime's packages (boto3, botocore, s3transfer, jmespath, dateutil, urllib3, six) on the path, and
nothing else. The development virtualenv has ~90 distributions more (moto, pytest, mypy...), and that is not only
untidy: pydantic scans every installed distribution's entry points for plugins when it builds its first model, which
costs ~60 ms in .venv and a fraction of that in Lambda. Benchmarks that time imports use this layout instead.
"""

from __future__ import annotations

import os
import subprocess
import sysconfig
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
PYCACHE = ROOT / ".aws-sam" / "bench-pycache"


def _newest(path: Path) -> float:
    return max((item.stat().st_mtime for item in path.rglob("*") if "__pycache__" not in item.parts), default=0.0)


def built_layer() -> Path:
    """The layer as ``sam build`` makes it (its ``python/`` is /opt/python), rebuilt when layers/common is newer."""
    if not (LAYER / "python").is_dir() or _newest(LAYER_SOURCE) > _newest(LAYER):
        print(f"building the layer: sam build CommonLayer --build-dir {BUILD.relative_to(ROOT)}")
        subprocess.run(["make", "-s", str(ROOT / ".venv-tools" / ".installed")], cwd=ROOT, check=True)
        subprocess.run(
            [
                *(str(ROOT / ".venv-tools" / "bin" / "sam"), "build", "CommonLayer", "--cached"),
                *("--build-dir", str(BUILD), "--cache-dir", str(BUILD.with_name("bench-build-cache"))),
            ],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
            # As `make build`: the runtime's Python (3.12) first on PATH, a region, no telemetry.
            env=os.environ
            | {
                "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                "SAM_CLI_TELEMETRY": "0",
            },
        )
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


def python_path(code_dir: Path, layer_source: Path = LAYER_SOURCE) -> list[str]:
    """sys.path of a function in Lambda: its code, the layer (our source first, then the built dependencies)."""
    return [str(code_dir), str(layer_source), str(built_layer() / "python"), str(runtime_packages())]
