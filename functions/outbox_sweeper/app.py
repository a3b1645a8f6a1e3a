"""The outbox sweep, on a schedule: publishes every stored outbox nobody published, and reports the oldest left.

`OldestPendingOutboxAge` is emitted on every run (0 when nothing is pending): its alarm also fires when no sweep runs.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from connection_repair.platform.observability import logger, metrics, trace_handler
from connection_repair.wiring.outbox_sweeper import outbox_sweep


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = outbox_sweep().run(remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000)
    metrics.add_metric(name="OutboxEventsFlushed", unit=MetricUnit.Count, value=outcome.published)
    metrics.add_metric(name="PendingOutboxes", unit=MetricUnit.Count, value=outcome.pending)
    metrics.add_metric(name="OldestPendingOutboxAge", unit=MetricUnit.Seconds, value=outcome.oldest_pending_seconds)
    summary = {
        "flushed": outcome.flushed,
        "published": outcome.published,
        "pending": outcome.pending,
        "oldestPendingSeconds": round(outcome.oldest_pending_seconds, 1),
    }
    if outcome.flushed:
        logger.warning("Stranded outboxes published", extra=summary)
    else:
        logger.info("Outbox sweep done", extra=summary)
    return summary
