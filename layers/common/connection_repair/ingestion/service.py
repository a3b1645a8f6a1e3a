"""Webhook ingestion: verify, then store once, apply in order, announce — the use case behind POST /webhooks/meld.

Verification and parsing are here; storing and applying are ``ingestion.ingest`` (the path reconciliation takes too).
A 200 is answered only once the event's outbox is empty; if publishing fails, or the process dies first, Meld retries
and the duplicate delivery publishes what is still pending.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from connection_repair.domain.bus_events import MeldWebhookReceived
from connection_repair.ingestion import signature
from connection_repair.ingestion.ingest import EventIngestor, IngestOutcome, IngestResult
from connection_repair.ingestion.webhook import (
    EventType,
    connection_change,
    named_connection,
    parse_webhook,
    stored_body,
)
from connection_repair.outbox.ports import StoredEvent
from connection_repair.platform.clock import Clock
from connection_repair.platform.observability import logger

__all__ = ["IngestOutcome", "IngestResult", "WebhookDelivery", "WebhookIngestor", "ordered_at"]


@dataclass(frozen=True)
class WebhookDelivery:
    """One HTTP delivery: lower-case header names, the body exactly as received, and the URL it was sent to."""

    headers: Mapping[str, str]
    raw_body: bytes
    request_url: str

    @property
    def retry_count(self) -> int:
        value = self.headers.get("meld-retry-count", "0").strip()
        return int(value) if value.isdigit() else 0


class PayloadTooLarge(Exception):
    pass


@dataclass(frozen=True)
class VerificationPolicy:
    url: str | None  # the public URL Meld signs; None: the URL the request arrived on
    secrets: Callable[[], Sequence[str]]
    tolerance_seconds: int
    max_body_bytes: int


class WebhookIngestor:
    def __init__(
        self,
        *,
        policy: VerificationPolicy,
        events: EventIngestor,
        forward: bool = False,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._policy = policy
        self._events = events
        # Every verified webhook also goes to the bus as `Meld Webhook Received`, through the event's outbox.
        self._forward = forward
        self._clock = clock

    def receive(self, delivery: WebhookDelivery) -> IngestResult:
        """Verify and ingest one delivery. Raises SignatureError, PayloadTooLarge, InvalidWebhook,
        DeliveryInProgress or PublishFailed; anything raised means nothing was acknowledged."""
        policy = self._policy
        if len(delivery.raw_body) > policy.max_body_bytes:
            raise PayloadTooLarge(f"body is larger than {policy.max_body_bytes} bytes")
        now = self._clock()
        signature.verify(
            delivery.headers,
            delivery.raw_body,
            url=policy.url or delivery.request_url,
            secrets=policy.secrets(),
            tolerance_seconds=policy.tolerance_seconds,
            now=now,
        )
        webhook = parse_webhook(delivery.raw_body)
        change = connection_change(webhook) if webhook.event_type in EventType.CONNECTION_STATE else None
        event_time = ordered_at(webhook.timestamp, received_at=now, tolerance_seconds=policy.tolerance_seconds)
        future_stamped = event_time != webhook.timestamp
        if future_stamped:
            logger.warning(
                "Event stamped in the future: ordered at its receipt",
                event_id=webhook.event_id,
                stamped=webhook.timestamp.isoformat(),
            )
        stored = StoredEvent(
            event_id=webhook.event_id,
            event_type=webhook.event_type,
            event_time=event_time,
            connection_id=change.connection_id if change else named_connection(webhook),
            received_at=now,
            retry_count=delivery.retry_count,
            raw_body=stored_body(delivery.raw_body),
            pending=[MeldWebhookReceived.of(json.loads(delivery.raw_body), event_time)] if self._forward else [],
        )
        result = self._events.ingest(stored, change)
        return replace(result, future_stamped=True) if future_stamped else result


def ordered_at(stamped: datetime, *, received_at: datetime, tolerance_seconds: int) -> datetime:
    """When an event counts as having happened, for ordering and for the episode it opens.

    Meld's stamp, unless it is further in the future than the signature's tolerance allows a clock to be off: such a
    stamp is not a time (a signed event stamped 2099 would make every later event stale, and open an episode that is
    never due), so the event counts from its receipt. A stamp within the tolerance is kept: events stamped a little
    ahead still order among themselves as Meld sent them.
    """
    if stamped > received_at + timedelta(seconds=tolerance_seconds):
        return received_at
    return stamped
