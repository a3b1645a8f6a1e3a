"""The events put on the app's EventBridge bus: an episode starts, an episode ends, a connection replaced, and every
webhook Meld sent (forwarded for the app's own consumers)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar, Literal

from connection_repair.domain.base import CamelModel
from connection_repair.domain.incident import InstitutionIncidentEnded, InstitutionIncidentStarted
from connection_repair.domain.status_policy import Action


class DownstreamEvent(CamelModel):
    """An event put on the app's EventBridge bus."""

    DETAIL_TYPE: ClassVar[str]

    # The contract's version (docs/events/): raised by a change a consumer would have to follow.
    version: Literal[1] = 1
    # The stored event that caused this one: Meld's eventId, or reconciliation's own for what it read back from Meld.
    event_id: str | None = None
    connection_id: str
    external_customer_id: str | None
    institution_id: str | None
    institution_name: str | None
    status: str | None
    status_reason: str | None
    action: Action
    episode_id: str
    event_time: datetime

    @property
    def detail_type(self) -> str:
        return self.DETAIL_TYPE


class ConnectionNeedsAttention(DownstreamEvent):
    DETAIL_TYPE: ClassVar[str] = "Connection Needs Attention"
    kind: Literal["needs_attention"] = "needs_attention"
    attention_since: datetime


class ConnectionAttentionEnded(DownstreamEvent):
    """The episode ended: the connection is usable again, or is gone (then ``resolution`` says so)."""

    DETAIL_TYPE: ClassVar[str] = "Connection Attention Ended"
    # "repaired": the kind an outbox written before the rename holds (its event is published under the new name).
    kind: Literal["attention_ended", "repaired"] = "attention_ended"
    # REPAIR_FAILED: repairs kept failing, the customer is to start a new connection instead.
    resolution: Literal["REPAIRED", "DELETED", "EXPIRED", "SUPERSEDED", "REPAIR_FAILED"]
    attention_since: datetime


class ConnectionReplaced(CamelModel):
    """A connection started to replace another has completed: the old one is to be deleted and marked replaced (or,
    for an inactive duplicate, the connection Meld keeps is to be found first)."""

    DETAIL_TYPE: ClassVar[str] = "Connection Replaced"
    kind: Literal["replaced"] = "replaced"

    version: Literal[1] = 1
    # Meld's eventId of the status change that completed the replacement.
    event_id: str | None = None
    connection_id: str
    replaced_connection_id: str
    external_customer_id: str | None
    event_time: datetime
    # Meld's "you linked the same bank again" (PARTIALLY_ACTIVE / INACTIVE_DUPLICATE): the connection Meld keeps is
    # another one (its activeDuplicateConnectionId), which the replacer looks up; this one is not the replacement.
    inactive_duplicate: bool = False

    @property
    def detail_type(self) -> str:
        return self.DETAIL_TYPE


# EventBridge takes entries up to 256 KB; an envelope larger than this is forwarded without its payload.
MAX_FORWARDED_BYTES = 200 * 1024


class MeldWebhookReceived(CamelModel):
    """A verified Meld webhook of any type, forwarded as Meld sent it but without ``serviceProviderDetails`` (it can
    hold the provider's access tokens): the detail on the bus is the envelope itself."""

    DETAIL_TYPE: ClassVar[str] = "Meld Webhook Received"
    kind: Literal["meld_webhook"] = "meld_webhook"

    event_time: datetime
    envelope: dict[str, Any]

    @property
    def detail_type(self) -> str:
        return self.DETAIL_TYPE

    @classmethod
    def of(cls, envelope: dict[str, Any], event_time: datetime) -> MeldWebhookReceived:
        forwarded = _without_provider_details(envelope)
        if len(json.dumps(forwarded, separators=(",", ":")).encode()) > MAX_FORWARDED_BYTES:
            forwarded = {name: value for name, value in forwarded.items() if name != "payload"} | {
                "payloadOmitted": True
            }
        return cls(event_time=event_time, envelope=forwarded)


def _without_provider_details(value: Any) -> Any:
    if isinstance(value, dict):
        return {name: _without_provider_details(inner) for name, inner in value.items() if name != PROVIDER_DETAILS}
    if isinstance(value, list):
        return [_without_provider_details(inner) for inner in value]
    return value


PROVIDER_DETAILS = "serviceProviderDetails"

AnyDownstreamEvent = ConnectionNeedsAttention | ConnectionAttentionEnded | ConnectionReplaced | MeldWebhookReceived
# Everything this stack puts on the bus: the outbox's events, and an institution's incidents (told by the notifier).
AnyBusEvent = AnyDownstreamEvent | InstitutionIncidentStarted | InstitutionIncidentEnded
