"""SES's bounce and complaint events, through SNS: each address a permanent bounce or a complaint condemns is marked
unusable, so that the notifier sends it nothing more (docs/operations.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import SnsModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from connection_repair.adapters.ses_feedback import feedback_of
from connection_repair.notify.feedback import record_feedback
from connection_repair.platform.observability import dimensioned_metric, logger, metrics, trace_handler
from connection_repair.wiring.contact_feedback import feedback_store


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
@trace_handler
@event_parser(model=SnsModel)
def lambda_handler(event: SnsModel, context: LambdaContext) -> dict[str, Any]:
    # SNS hands SES's event over as text (the parser's model also allows a parsed one, which SNS never sends).
    feedback = [each for record in event.Records for each in feedback_of(str(record.Sns.Message))]
    marked = record_feedback(feedback_store(), feedback, now=datetime.now(UTC))
    for reason, count in marked.items():
        dimensioned_metric("ContactsMarkedUnusable", count, Reason=reason)
    return {"marked": dict(marked)}
