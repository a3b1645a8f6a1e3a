"""The events put on the app's EventBridge bus: an episode starts, an episode ends, a connection replaced."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from connection_repair.domain.base import CamelModel
from connection_repair.domain.status_policy import Action


class DownstreamEvent(CamelModel):
    """An event put on the app's EventBridge bus."""

    DETAIL_TYPE: ClassVar[str]

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


class ConnectionRepaired(DownstreamEvent):
    """The episode ended: the connection is usable again, or is gone (then ``resolution`` says so)."""

    DETAIL_TYPE: ClassVar[str] = "Connection Repaired"
    kind: Literal["repaired"] = "repaired"
    # REPAIR_FAILED: repairs kept failing, the customer is to start a new connection instead.
    resolution: Literal["REPAIRED", "DELETED", "EXPIRED", "SUPERSEDED", "REPAIR_FAILED"]
    attention_since: datetime


class ConnectionReplaced(CamelModel):
    """A connection started to replace another has completed: the old one is to be deleted and marked replaced (or,
    for an inactive duplicate, the connection Meld keeps is to be found first)."""

    DETAIL_TYPE: ClassVar[str] = "Connection Replaced"
    kind: Literal["replaced"] = "replaced"

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


AnyDownstreamEvent = ConnectionNeedsAttention | ConnectionRepaired | ConnectionReplaced
