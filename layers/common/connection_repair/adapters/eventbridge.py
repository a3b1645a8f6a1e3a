"""The app's EventBridge bus, where downstream events go for the notifier (and for the app, if it wants them)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from connection_repair.domain.bus_events import AnyBusEvent, MeldWebhookReceived
from connection_repair.outbox.ports import PublishFailed

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef
else:
    EventBridgeClient = Any

_MAX_ENTRIES_PER_CALL = 10
# PutEvents calls per batch: the first, and two for the entries EventBridge refused, after a pause that doubles.
PUT_ATTEMPTS = 3
_RESEND_PAUSE_SECONDS = 0.1


def event_detail(event: AnyBusEvent) -> str:
    if isinstance(event, MeldWebhookReceived):
        return json.dumps(event.envelope, separators=(",", ":"))
    return json.dumps(event.model_dump(mode="json", by_alias=True, exclude={"kind"}), separators=(",", ":"))


class EventBridgePublisher:
    """PutEvents in batches of ten. Entries EventBridge refuses (a partial failure, HTTP 200) are sent again, alone,
    after a short pause; ``PublishFailed`` only when some are still refused, so an accepted entry is not resent."""

    def __init__(
        self,
        client: EventBridgeClient,
        bus_name: str,
        source: str,
        *,
        attempts: int = PUT_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._bus = bus_name
        self._source = source
        self._attempts = attempts
        self._sleep = sleep

    def publish(self, events: Sequence[AnyBusEvent]) -> None:
        for start in range(0, len(events), _MAX_ENTRIES_PER_CALL):
            self._publish_batch(events[start : start + _MAX_ENTRIES_PER_CALL])

    def _publish_batch(self, batch: Sequence[AnyBusEvent]) -> None:
        pending = list(batch)
        codes: list[str] = []
        for attempt in range(self._attempts):
            if attempt:
                # Within Meld's 10 s: 0.1 s, then 0.2 s.
                self._sleep(_RESEND_PAUSE_SECONDS * 2 ** (attempt - 1))
            try:
                response = self._client.put_events(Entries=[self._entry(event) for event in pending])
            except (ClientError, BotoCoreError) as error:
                # Throttled, refused or unreachable (after botocore's retries): the events stay in the outbox, as
                # when some entries are refused; the caller must not mistake it for a failed store.
                raise PublishFailed(f"PutEvents failed: {type(error).__name__}") from error
            results = response["Entries"]
            refused = [event for event, result in zip(pending, results, strict=True) if "ErrorCode" in result]
            if not refused:
                return
            codes = sorted({result["ErrorCode"] for result in results if "ErrorCode" in result})
            pending = refused
        raise PublishFailed(f"{len(pending)} of {len(batch)} events refused {self._attempts} times: {codes}")

    def _entry(self, event: AnyBusEvent) -> PutEventsRequestEntryTypeDef:
        return {
            "EventBusName": self._bus,
            "Source": self._source,
            "DetailType": event.detail_type,
            "Detail": event_detail(event),
            "Time": event.event_time,
        }
