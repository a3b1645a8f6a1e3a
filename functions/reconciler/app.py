"""Reconciliation with Meld: hourly on a schedule; a backfill when invoked with ``{"mode": "backfill"}``.

The schedule's `Scheduled Event` runs the drift mode. Anything else must name a mode; an unknown one is refused
before any work. A run cut short (time, Meld unavailable) stores where it stopped and the next run continues.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, ValidationError

from connection_repair.platform.observability import dimensioned_metric, logger, metrics, trace_handler
from connection_repair.reconcile.ports import Mode
from connection_repair.reconcile.service import Reconciliation
from connection_repair.wiring.reconciler import reconciler


class ReconcileRequest(BaseModel):
    """A direct invocation's event (``sam remote invoke``), or the schedule's envelope."""

    # The schedule's envelope carries no mode: it is the hourly drift run.
    model_config = ConfigDict(extra="ignore")

    mode: Mode = Mode.DRIFT


class InvalidRequest(ValueError):
    pass


def request_of(event: Any) -> ReconcileRequest:
    if not isinstance(event, dict):
        raise InvalidRequest('expected a JSON object such as {"mode": "backfill"}')
    try:
        return ReconcileRequest.model_validate(event)
    except ValidationError:
        modes = ", ".join(f'"{mode}"' for mode in Mode)
        raise InvalidRequest(f"mode must be one of {modes}") from None


def record(outcome: Reconciliation) -> None:
    total = sum(outcome.drift.values())
    metrics.add_metric(name="ReconciliationDrift", unit=MetricUnit.Count, value=total)
    for kind, count in outcome.drift.items():
        dimensioned_metric("ReconciliationDrift", count, Kind=kind)
    metrics.add_metric(name="ReconcileMeldRequests", unit=MetricUnit.Count, value=outcome.meld_requests)
    if outcome.imported:
        metrics.add_metric(name="ConnectionsBackfilled", unit=MetricUnit.Count, value=outcome.imported)
    if outcome.stopped:
        metrics.add_metric(name="ReconcileCutShort", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    request = request_of(event)
    outcome = reconciler().run(request.mode, remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000)
    record(outcome)
    summary: dict[str, Any] = {
        "mode": outcome.mode.value,
        "runId": outcome.run_id,
        "complete": outcome.complete,
        "stopped": outcome.stopped,
        "drift": {kind.value: count for kind, count in sorted(outcome.drift.items())},
        "imported": outcome.imported,
        "pages": outcome.pages,
        "checked": outcome.checked,
        "unknownToMeld": outcome.unknown_to_meld,
    }
    logger.info("Reconciliation done" if outcome.complete else "Reconciliation cut short", extra=summary)
    return summary
