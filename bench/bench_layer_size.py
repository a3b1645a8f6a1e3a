"""Size of the built CommonLayer, zipped the way it is uploaded (deflated), and unzipped.

The layer is built with `sam build` (``bench.lambda_layout.built_layer``: a build of its own, redone when
layers/common changed) and zipped in memory with Python's zipfile (ZIP_DEFLATED, default level). Lambda's limits:
50 MB zipped for a direct upload, 250 MB unzipped for the function and all its layers together. Also counted: the
modules that ship without usable bytecode (none expected: the layer's build compiles every module, and Lambda, whose
/opt is read-only, would compile such a module again on every cold start).

Run: `make bench-layer` (or PYTHONPATH=layers/common:. .venv/bin/python -m bench.bench_layer_size)
"""

from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path

from bench.harness import record
from bench.lambda_layout import built_layer

ZIPPED_LIMIT = 50 * 1024 * 1024
UNZIPPED_LIMIT = 250 * 1024 * 1024


def zipped_size(root: Path) -> tuple[int, int, int]:
    """(zipped bytes, unzipped bytes, files) of ``root``'s contents, paths relative to it (python/...)."""
    buffer = io.BytesIO()
    unzipped = files = 0
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root).as_posix())
                unzipped += path.stat().st_size
                files += 1
    return buffer.getbuffer().nbytes, unzipped, files


def modules_without_bytecode(root: Path) -> list[str]:
    """Modules under ``root`` with no bytecode that Python 3.12 uses without reading the source (unchecked hash)."""
    missing = []
    for source in sorted(root.rglob("*.py")):
        cached = Path(importlib.util.cache_from_source(str(source)))
        # PEP 552 header: magic, then flags; 0b01 = hash-based, 0b10 = check the source (so 0b01 alone: unchecked).
        header = cached.read_bytes()[:8] if cached.exists() else b""
        if header[:4] != importlib.util.MAGIC_NUMBER or int.from_bytes(header[4:8], "little") != 0b01:
            missing.append(source.relative_to(root).as_posix())
    return missing


def main() -> None:
    layer = built_layer()
    zipped, unzipped, files = zipped_size(layer)
    uncompiled = modules_without_bytecode(layer)
    print(
        f"layer size: {zipped / 1e6:.2f} MB zipped ({zipped} bytes, deflated), {unzipped / 1e6:.2f} MB unzipped, "
        f"{files} files (limits: 50 MB zipped upload, 250 MB unzipped with the function); "
        f"modules without bytecode: {len(uncompiled)} {uncompiled[:5] if uncompiled else ''}"
    )
    record(
        [],
        extra={
            "layer_size": {
                "zipped_bytes": zipped,
                "unzipped_bytes": unzipped,
                "files": files,
                "modules_without_bytecode": uncompiled,
                "zipped_limit_bytes": ZIPPED_LIMIT,
                "unzipped_limit_bytes": UNZIPPED_LIMIT,
                "met": zipped <= ZIPPED_LIMIT and unzipped <= UNZIPPED_LIMIT and not uncompiled,
            }
        },
    )


if __name__ == "__main__":
    main()
