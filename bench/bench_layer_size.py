"""Size of the built CommonLayer, zipped the way it is uploaded (deflated), and unzipped.

The layer is built with `sam build` (``bench.lambda_layout.built_layer``: a build of its own, redone when
layers/common changed) and zipped in memory with Python's zipfile (ZIP_DEFLATED, default level). Lambda's limits:
50 MB zipped for a direct upload, 250 MB unzipped for the function and all its layers together.

Run: `make bench-layer` (or PYTHONPATH=layers/common:. .venv/bin/python -m bench.bench_layer_size)
"""

from __future__ import annotations

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


def main() -> None:
    layer = built_layer()
    zipped, unzipped, files = zipped_size(layer)
    print(
        f"layer size: {zipped / 1e6:.2f} MB zipped ({zipped} bytes, deflated), {unzipped / 1e6:.2f} MB unzipped, "
        f"{files} files (limits: 50 MB zipped upload, 250 MB unzipped with the function)"
    )
    record(
        [],
        extra={
            "layer_size": {
                "zipped_bytes": zipped,
                "unzipped_bytes": unzipped,
                "files": files,
                "zipped_limit_bytes": ZIPPED_LIMIT,
                "unzipped_limit_bytes": UNZIPPED_LIMIT,
                "met": zipped <= ZIPPED_LIMIT and unzipped <= UNZIPPED_LIMIT,
            }
        },
    )


if __name__ == "__main__":
    main()
