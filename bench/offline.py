"""Fake AWS credentials and region for the benchmarks, set before anything builds a boto3 client (moto's advice),
and never a real or local endpoint: moto intercepts every call in-process."""

from __future__ import annotations

import os


def use_fake_aws(**extra: str) -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_SERVICE_NAME="connection-repair",
        POWERTOOLS_METRICS_NAMESPACE="ConnectionRepair",
        **extra,
    )
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
