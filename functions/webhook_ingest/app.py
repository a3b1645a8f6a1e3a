"""POST /webhooks/meld: Meld's signed webhooks in, connection state and downstream events out.

API Gateway routes exactly one route here, so the handler reads the HTTP API (2.0) event itself rather than through
Powertools' event handler, whose package import (every resolver, asyncio, all event data classes) was a third of
this function's cold start (docs/decisions.md §28). Answers keep the resolver's shape.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from connection_repair.ingestion.ingest import IngestOutcome
from connection_repair.ingestion.service import IngestResult, PayloadTooLarge, WebhookDelivery
from connection_repair.ingestion.signature import SignatureError
from connection_repair.ingestion.webhook import InvalidWebhook
from connection_repair.outbox.outbox import DeliveryInProgress
from connection_repair.outbox.ports import PublishFailed
from connection_repair.platform.aws import is_throttled
from connection_repair.platform.observability import dimensioned_metric, logger, metrics, trace_handler
from connection_repair.wiring.webhook import webhook_ingestor

# Metric names in full, so that searching for one finds where it is emitted (docs/operations.md lists them all).
OUTCOME_METRICS = {
    IngestOutcome.ACCEPTED: "WebhooksAccepted",
    IngestOutcome.DUPLICATE: "WebhooksDuplicate",
    IngestOutcome.STALE: "WebhooksStale",
    IngestOutcome.IGNORED: "WebhooksIgnored",
}

# API Gateway's route key, not the path: behind a custom domain's API mapping or a named stage the path carries a
# prefix, while the route key is the route as the template declares it.
ROUTE_KEY = "POST /webhooks/meld"


def _json(status: HTTPStatus, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    """An HTTP API (payload 2.0) answer, as Powertools' resolver builds it."""
    return {
        "statusCode": int(status),
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
        "headers": (headers or {}) | {"Content-Type": "application/json"},
        "cookies": [],
    }


def _error(status: HTTPStatus, code: str, message: str, retry_after: int | None = None) -> dict[str, Any]:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return _json(status, {"error": code, "message": message}, headers)


def receive_meld_webhook(event: dict[str, Any]) -> dict[str, Any]:
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    request_url = f"https://{event['requestContext']['domainName']}{event['rawPath']}"
    delivery = WebhookDelivery(headers=headers, raw_body=raw, request_url=request_url)
    result: IngestResult = webhook_ingestor().receive(delivery)

    logger.info(
        "Webhook ingested",
        outcome=result.outcome.value,
        event_id=result.event_id,
        event_type=result.event_type,
        connection_id=result.connection_id,
        published=result.published,
        retry_count=headers.get("meld-retry-count"),
    )
    if result.unknown_state:
        _unknown_status(result)
    if result.future_stamped:
        metrics.add_metric(name="WebhooksFutureStamped", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=OUTCOME_METRICS[result.outcome], unit=MetricUnit.Count, value=1)
    if result.published:
        metrics.add_metric(name="DownstreamEventsPublished", unit=MetricUnit.Count, value=result.published)
    return _json(HTTPStatus.OK, {"status": result.outcome.value, "eventId": result.event_id})


def _unknown_status(result: IngestResult) -> None:
    # A status Meld added may mean "broken": it is classified WAIT (nobody is told), so someone must look (alarmed).
    logger.warning(
        "Connection status or reason not in Meld's documented lists",
        connection_id=result.connection_id,
        status=result.status,
        status_reason=result.status_reason,
    )
    metrics.add_metric(name="UnknownConnectionStatuses", unit=MetricUnit.Count, value=1)
    dimensioned_metric(
        "UnknownConnectionStatusesByStatus",
        1,
        Status=_dimension(result.status),
        Reason=_dimension(result.status_reason),
    )


def _dimension(value: str | None) -> str:
    # CloudWatch dimension values are non-empty and at most 1024 characters.
    return (value or "-")[:255]


def _rejected(reason: str) -> None:
    metrics.add_metric(name="WebhooksRejected", unit=MetricUnit.Count, value=1)
    # The reason as a dimension of its own metric, so dashboards can split rejections without new metric names.
    dimensioned_metric("WebhooksRejectedByReason", 1, Reason=reason)


def signature_rejected(error: SignatureError) -> dict[str, Any]:
    logger.warning("Webhook rejected: signature", reason=error.reason.value)
    _rejected(error.reason.value)
    metrics.add_metric(name="WebhookSignatureRejections", unit=MetricUnit.Count, value=1)
    return _error(HTTPStatus.UNAUTHORIZED, error.reason.value, error.message)


def too_large(error: PayloadTooLarge) -> dict[str, Any]:
    logger.warning("Webhook rejected: too large")
    _rejected("PAYLOAD_TOO_LARGE")
    return _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "PAYLOAD_TOO_LARGE", str(error))


def invalid(error: InvalidWebhook) -> dict[str, Any]:
    logger.warning("Webhook rejected: invalid body", detail=str(error))
    _rejected("INVALID_BODY")
    return _error(HTTPStatus.BAD_REQUEST, "INVALID_BODY", str(error))


def in_progress(error: DeliveryInProgress) -> dict[str, Any]:
    logger.info("Duplicate delivery while the first is still publishing", event_id=str(error))
    metrics.add_metric(name="WebhooksInProgress", unit=MetricUnit.Count, value=1)
    return _error(HTTPStatus.SERVICE_UNAVAILABLE, "IN_PROGRESS", "this event is still being processed", 5)


def publish_failed(error: PublishFailed) -> dict[str, Any]:
    # Stored, with its downstream events in the outbox: Meld's retry publishes them.
    logger.error("Downstream publish failed; left in the outbox for Meld's retry", detail=str(error))
    metrics.add_metric(name="DownstreamPublishFailures", unit=MetricUnit.Count, value=1)
    return _error(HTTPStatus.SERVICE_UNAVAILABLE, "PUBLISH_FAILED", "stored; downstream delivery will be retried", 60)


def store_busy(error: Exception) -> dict[str, Any]:
    # DynamoDB refused for load: nothing was written, and Meld's retry will likely pass. Counted, not paged.
    logger.warning("Webhook not stored: the table is busy", detail=type(error).__name__)
    metrics.add_metric(name="StoreThrottled", unit=MetricUnit.Count, value=1)
    return _error(HTTPStatus.SERVICE_UNAVAILABLE, "STORE_BUSY", "the event was not stored; retry later", 5)


def unexpected(error: Exception) -> dict[str, Any]:
    if is_throttled(error):
        return store_busy(error)
    # Nothing half-written: the store writes in one transaction. Meld retries anything but 200.
    logger.exception("Webhook failed")
    metrics.add_metric(name="WebhookErrors", unit=MetricUnit.Count, value=1)
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "the event was not stored; retry later")


ERROR_ANSWERS: tuple[tuple[type[Exception], Callable[[Any], dict[str, Any]]], ...] = (
    (SignatureError, signature_rejected),
    (PayloadTooLarge, too_large),
    (InvalidWebhook, invalid),
    (DeliveryInProgress, in_progress),
    (PublishFailed, publish_failed),
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(capture_cold_start_metric=True)
@trace_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("routeKey") != ROUTE_KEY:
        return _json(HTTPStatus.NOT_FOUND, {"statusCode": 404, "message": "Not found"})
    try:
        return receive_meld_webhook(event)
    except Exception as error:
        # Mapped as the resolver's exception handlers did: nothing leaves this function as an exception.
        answer = next((answer for kind, answer in ERROR_ANSWERS if isinstance(error, kind)), unexpected)
        return answer(error)
