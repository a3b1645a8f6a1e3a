"""The shared Logger, Metrics and tracing decorator; every handler wears the same stack.

Tracing: Powertools' Tracer imports and patches the X-Ray SDK when constructed (~0.3 s of cold start here, more than
boto3). By default (``TRACING_MODE=active``) functions rely on Lambda's active tracing, which records each
invocation without the SDK. ``TRACING_MODE=sdk`` builds Powertools' Tracer for subsegments of boto3 and httpx
calls; it needs ``aws-lambda-powertools[tracer]`` in the layer's requirements (left out: it pulls a second
botocore). See docs/decisions.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "connection-repair")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ConnectionRepair")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def dimensioned_metric(name: str, count: float, *, unit: MetricUnit = MetricUnit.Count, **dimensions: str) -> None:
    """A metric of its own with ``dimensions`` (``Reason="..."``), printed now: the invocation's other metrics keep
    only the service dimension."""
    with single_metric(name=name, unit=unit, value=count, namespace=NAMESPACE) as metric:
        for dimension, value in dimensions.items():
            metric.add_dimension(name=dimension, value=value)


def trace_handler[Handler: Callable[..., Any]](handler: Handler) -> Handler:
    """Powertools' ``capture_lambda_handler`` when SDK tracing is on; otherwise the handler unchanged."""
    if os.environ.get("TRACING_MODE", "active").lower() != "sdk":
        return handler
    from aws_lambda_powertools import Tracer

    return cast(Handler, Tracer(service=SERVICE).capture_lambda_handler(handler))
