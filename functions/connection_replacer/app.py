"""``Connection Replaced`` from the app's bus: delete the old connection at Meld and mark it replaced.

Invoked asynchronously by an EventBridge rule. Anything raised makes Lambda retry the event (then the DLQ); the use
case is idempotent, so a retry finishes what an earlier attempt started.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from connection_repair.domain.bus_events import ConnectionReplaced
from connection_repair.platform.observability import logger, metrics, trace_handler
from connection_repair.replacement.service import ReplacementOutcome
from connection_repair.wiring.replacer import connection_replacer

# Metric names in full, so that searching for one finds where it is emitted (docs/operations.md lists them all).
OUTCOME_METRICS = {
    ReplacementOutcome.REPLACED: "ConnectionsRetiredRetired",
    ReplacementOutcome.ALREADY_REPLACED: "ConnectionsRetiredAlreadyRetired",
    ReplacementOutcome.SKIPPED: "ConnectionsRetiredSkipped",
    ReplacementOutcome.KEPT: "ConnectionsRetiredKept",
}


class ConnectionReplacedEvent(EventBridgeModel):
    detail: ConnectionReplaced


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
@trace_handler
@event_parser(model=ConnectionReplacedEvent)
def lambda_handler(event: ConnectionReplacedEvent, context: LambdaContext) -> dict[str, Any]:
    outcome = connection_replacer().replace(event.detail)
    logger.info(
        "Replacement handled",
        outcome=outcome.value,
        connection_id=event.detail.connection_id,
        replaced_connection_id=event.detail.replaced_connection_id,
    )
    metrics.add_metric(name=OUTCOME_METRICS[outcome], unit=MetricUnit.Count, value=1)
    return {"outcome": outcome.value}
