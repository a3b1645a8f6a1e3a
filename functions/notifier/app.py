"""The notifier: `Connection Needs Attention` / `Connection Attention Ended` from the app's bus, and the reminder sweep.

Bus events arrive through the notifier's SQS queue, in batches: a record that fails (a send that did not go out, an
event that does not parse) is reported back alone and redelivered until the queue parks it in the dead-letter queue;
the others are done. The schedule invokes the handler directly with its `Scheduled Event`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from connection_repair.domain.bus_events import ConnectionAttentionEnded, ConnectionNeedsAttention
from connection_repair.notify.outcome import DeliveryFailed, Outcome
from connection_repair.platform.observability import dimensioned_metric, logger, metrics, trace_handler
from connection_repair.wiring.notifier import notifier

SCHEDULED = "Scheduled Event"
# Metric names in full, so that searching for one finds where it is emitted (docs/operations.md lists them all).
INCIDENT_METRICS = {"STARTED": "InstitutionIncidentsStarted", "ENDED": "InstitutionIncidentsEnded"}


class QueuedBusEvent(SqsRecordModel):
    """An SQS record whose body is the EventBridge event the bus rule delivered to the queue."""

    body: Json[EventBridgeModel]


def record(outcome: Outcome) -> None:
    """Metrics of one invocation: sent, suppressed and deferred by reason, and how episodes ended."""
    if outcome.messages_sent:
        metrics.add_metric(name="NotificationsSent", unit=MetricUnit.Count, value=outcome.messages_sent)
    for channel, count in outcome.sent_by_channel.items():
        dimensioned_metric("NotificationsSentByChannel", count, Channel=channel)
    if outcome.suppressed:
        metrics.add_metric(name="NotificationsSuppressed", unit=MetricUnit.Count, value=outcome.suppressed.total())
    for reason, count in outcome.suppressed.items():
        dimensioned_metric("NotificationsSuppressedByReason", count, Reason=reason)
    for reason, count in outcome.deferred.items():
        dimensioned_metric("NotificationsDeferredByReason", count, Reason=reason)
    if outcome.channel_failures:
        metrics.add_metric(name="NotificationChannelFailures", unit=MetricUnit.Count, value=outcome.channel_failures)
    if outcome.failures:
        metrics.add_metric(name="NotificationSendFailures", unit=MetricUnit.Count, value=outcome.failures)
    if outcome.template_fallbacks:
        metrics.add_metric(name="MessageTemplateFallbacks", unit=MetricUnit.Count, value=outcome.template_fallbacks)
    for change, count in outcome.incidents.items():
        if count:
            metrics.add_metric(name=INCIDENT_METRICS[change], unit=MetricUnit.Count, value=count)
    for resolution, seconds, reminders in outcome.ended:
        dimensioned_metric("EpisodesEnded", 1, Resolution=resolution)
        if resolution == "REPAIRED":
            metrics.add_metric(name="EpisodeTimeToRepair", unit=MetricUnit.Seconds, value=seconds)
            dimensioned_metric("EpisodesRepairedAfterReminders", 1, Reminders=str(reminders))


def handle(event: EventBridgeModel, context: LambdaContext) -> Outcome:
    detail_type = event.detail_type
    if detail_type == ConnectionNeedsAttention.DETAIL_TYPE:
        return notifier().on_needs_attention(ConnectionNeedsAttention.model_validate(event.detail))
    if detail_type == ConnectionAttentionEnded.DETAIL_TYPE:
        return notifier().on_attention_ended(ConnectionAttentionEnded.model_validate(event.detail))
    if detail_type == SCHEDULED:
        outcome = notifier().sweep(remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000)
        metrics.add_metric(name="ReminderSweepItemsRead", unit=MetricUnit.Count, value=outcome.items_read)
        metrics.add_metric(name="OldestDueMessageAge", unit=MetricUnit.Seconds, value=outcome.oldest_due_seconds)
        if outcome.customers_left:
            metrics.add_metric(name="SweepTruncated", unit=MetricUnit.Count, value=1)
        return outcome
    logger.info("Event ignored", detail_type=detail_type)
    return Outcome()


def run(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    """One bus or schedule event, its metrics and a summary line."""
    # Every line logged for a bus event names the Meld event that caused it and its connection: one id follows a
    # change from Meld's delivery to the message sent (docs/operations.md, following one connection).
    detail = event.detail if isinstance(event.detail, dict) else {}
    cause = {"event_id": detail.get("eventId"), "connection_id": detail.get("connectionId")}
    with logger.append_context_keys(**{key: value for key, value in cause.items() if value}):
        try:
            outcome = handle(event, context)
        except DeliveryFailed as failed:
            # Claims released; the event comes back (redelivery; the sweep would also pick the message up).
            record(failed.outcome)
            logger.error("Notification not sent; the event will be retried", detail_type=event.detail_type)
            raise
        record(outcome)
        summary = {
            "sent": outcome.messages_sent,
            "suppressed": dict(outcome.suppressed),
            "deferred": dict(outcome.deferred),
            "failures": outcome.failures,
            "itemsRead": outcome.items_read,
        }
        logger.info("Notifier done", extra={"detail_type": event.detail_type, **summary})
    return summary


def run_queued(records: list[dict[str, Any]], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    """Lambda's partial batch response: the records that failed return to the queue, the others are done.

    A batch whose every record fails is answered, not raised: the records return either way, and the function's own
    errors stay a signal of the function failing.
    """
    failures: list[dict[str, str]] = []
    for message in records:
        message_id = str(message["messageId"])
        try:
            queued = QueuedBusEvent.model_validate(message)
            logger.set_correlation_id(queued.body.id)
            run(queued.body, context)
        except Exception as error:  # one record's failure, whatever it is, must not fail its batch mates
            # A send that did not go out is logged by run(); anything else gets its traceback.
            unexpected = not isinstance(error, DeliveryFailed)
            reason = type(error).__name__
            logger.warning(
                "Queued event returned to the queue", message_id=message_id, error=reason, exc_info=unexpected
            )
            failures.append({"itemIdentifier": message_id})
    logger.set_correlation_id(None)
    return {"batchItemFailures": failures}


@logger.inject_lambda_context(correlation_id_path="id")
@metrics.log_metrics(capture_cold_start_metric=True)
@trace_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return run_queued(event["Records"], context)
    return run(parse(event=event, model=EventBridgeModel), context)
