"""POST /webhooks/meld: Meld's signed webhooks in, connection state and downstream events out."""

from __future__ import annotations

import base64
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from connection_repair.ingest import (
    DeliveryInProgress,
    IngestResult,
    InvalidWebhook,
    PayloadTooLarge,
    WebhookDelivery,
)
from connection_repair.observability import NAMESPACE, logger, metrics, trace_handler
from connection_repair.ports import PublishFailed
from connection_repair.signature import SignatureError
from connection_repair.wiring import webhook_ingestor

app = APIGatewayHttpResolver()


def _json(status: HTTPStatus, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


def _error(status: HTTPStatus, code: str, message: str, retry_after: int | None = None) -> Response[Any]:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return _json(status, {"error": code, "message": message}, headers)


@app.post("/webhooks/meld")
def receive_meld_webhook() -> Response[Any]:
    event = app.current_event
    body = event.body or ""
    raw = base64.b64decode(body) if event.is_base64_encoded else body.encode()
    headers = {name.lower(): value for name, value in (event.headers or {}).items()}
    request_url = f"https://{event.request_context.domain_name}{event.raw_path}"
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
        logger.warning("Connection status or reason not in Meld's documented lists", connection_id=result.connection_id)
    metrics.add_metric(name=f"Webhooks{result.outcome.value.capitalize()}", unit=MetricUnit.Count, value=1)
    if result.published:
        metrics.add_metric(name="DownstreamEventsPublished", unit=MetricUnit.Count, value=result.published)
    return _json(HTTPStatus.OK, {"status": result.outcome.value, "eventId": result.event_id})


def _rejected(reason: str) -> None:
    metrics.add_metric(name="WebhooksRejected", unit=MetricUnit.Count, value=1)
    # The reason as a dimension of its own metric, so dashboards can split rejections without new metric names.
    with single_metric(name="WebhooksRejectedByReason", unit=MetricUnit.Count, value=1, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="Reason", value=reason)


@app.exception_handler(SignatureError)
def signature_rejected(error: SignatureError) -> Response[Any]:
    logger.warning("Webhook rejected: signature", reason=error.reason.value)
    _rejected(error.reason.value)
    metrics.add_metric(name="WebhookSignatureRejections", unit=MetricUnit.Count, value=1)
    return _error(HTTPStatus.UNAUTHORIZED, error.reason.value, error.message)


@app.exception_handler(PayloadTooLarge)
def too_large(error: PayloadTooLarge) -> Response[Any]:
    logger.warning("Webhook rejected: too large")
    _rejected("PAYLOAD_TOO_LARGE")
    return _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "PAYLOAD_TOO_LARGE", str(error))


@app.exception_handler(InvalidWebhook)
def invalid(error: InvalidWebhook) -> Response[Any]:
    logger.warning("Webhook rejected: invalid body", detail=str(error))
    _rejected("INVALID_BODY")
    return _error(HTTPStatus.BAD_REQUEST, "INVALID_BODY", str(error))


@app.exception_handler(DeliveryInProgress)
def in_progress(error: DeliveryInProgress) -> Response[Any]:
    logger.info("Duplicate delivery while the first is still publishing", event_id=str(error))
    metrics.add_metric(name="WebhooksInProgress", unit=MetricUnit.Count, value=1)
    return _error(HTTPStatus.SERVICE_UNAVAILABLE, "IN_PROGRESS", "this event is still being processed", 5)


@app.exception_handler(PublishFailed)
def publish_failed(error: PublishFailed) -> Response[Any]:
    # Stored, with its downstream events in the outbox: Meld's retry publishes them.
    logger.error("Downstream publish failed; left in the outbox for Meld's retry", detail=str(error))
    metrics.add_metric(name="DownstreamPublishFailures", unit=MetricUnit.Count, value=1)
    return _error(HTTPStatus.SERVICE_UNAVAILABLE, "PUBLISH_FAILED", "stored; downstream delivery will be retried", 60)


@app.exception_handler(Exception)
def unexpected(error: Exception) -> Response[Any]:
    # Nothing half-written: the store writes in one transaction. Meld retries anything but 200.
    logger.exception("Webhook failed")
    metrics.add_metric(name="WebhookErrors", unit=MetricUnit.Count, value=1)
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "the event was not stored; retry later")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(capture_cold_start_metric=True)
@trace_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
