"""A deployment's own message templates: an S3 prefix in AWS, a directory for the local stack and the checks."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any

# How long a change to the templates takes to reach a warm notifier (and how long a failed read is not retried).
CACHE_SECONDS = 300.0
# What a deployment keeps under its prefix: a few dozen small files.
MAX_FILES = 500


class S3TemplateSource:
    """Every file under the prefix, read in one pass and kept for ``CACHE_SECONDS``; a failed read is raised (the
    message is then made from the project's templates) and not tried again before that."""

    def __init__(
        self, client: S3Client, bucket: str, prefix: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self._clock = clock
        self._files: dict[str, str] = {}
        self._error: Exception | None = None
        self._read_at: float | None = None

    def read(self, name: str) -> str | None:
        if self._read_at is None or self._clock() - self._read_at >= CACHE_SECONDS:
            self._load()
        if self._error is not None:
            raise self._error
        return self._files.get(name)

    def _load(self) -> None:
        self._read_at = self._clock()
        files: dict[str, str] = {}
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=self._prefix
            ):
                for entry in page.get("Contents", []):
                    key = entry["Key"]
                    if key.endswith("/") or len(files) >= MAX_FILES:
                        continue
                    body = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
                    files[key[len(self._prefix) :]] = body.decode("utf-8")
        except Exception as error:  # S3, or a file that is not UTF-8: the project's templates are used
            self._error = error
            return
        self._files, self._error = files, None


class DirectoryTemplateSource:
    """A directory laid out as the S3 prefix: ``messages/`` of the project, checked by its tests before upload."""

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    def read(self, name: str) -> str | None:
        path = (self._root / name).resolve()
        if not path.is_relative_to(self._root) or not path.is_file():
            return None
        return path.read_text(encoding="utf-8")
