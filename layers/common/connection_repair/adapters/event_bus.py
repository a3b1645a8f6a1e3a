"""The app's EventBridge bus, where downstream events go for the notifier (and for the app, if it wants them)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from connection_repair.models import AnyDownstreamEvent
from connection_repair.ports import PublishFailed

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef
else:
    EventBridgeClient = Any

_MAX_ENTRIES_PER_CALL = 10


def event_detail(event: AnyDownstreamEvent) -> str:
    return json.dumps(event.model_dump(mode="json", by_alias=True, exclude={"kind"}), separators=(",", ":"))


class EventBridgePublisher:
    def __init__(self, client: EventBridgeClient, bus_name: str, source: str) -> None:
        self._client = client
        self._bus = bus_name
        self._source = source

    def publish(self, events: Sequence[AnyDownstreamEvent]) -> None:
        for start in range(0, len(events), _MAX_ENTRIES_PER_CALL):
            batch = events[start : start + _MAX_ENTRIES_PER_CALL]
            entries: list[PutEventsRequestEntryTypeDef] = [
                {
                    "EventBusName": self._bus,
                    "Source": self._source,
                    "DetailType": event.detail_type,
                    "Detail": event_detail(event),
                    "Time": event.event_time,
                }
                for event in batch
            ]
            try:
                response = self._client.put_events(Entries=entries)
            except (ClientError, BotoCoreError) as error:
                # Throttled, refused or unreachable (after botocore's retries): the events stay in the outbox, as
                # when some entries are refused; the caller must not mistake it for a failed store.
                raise PublishFailed(f"PutEvents failed: {type(error).__name__}") from error
            if response.get("FailedEntryCount", 0):
                codes = sorted({entry.get("ErrorCode", "?") for entry in response["Entries"] if "ErrorCode" in entry})
                raise PublishFailed(f"{response['FailedEntryCount']} of {len(batch)} events rejected: {codes}")
