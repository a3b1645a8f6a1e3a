"""What the notifier keeps and sends: an episode's notification state, a message, a claim on one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ConfigDict

from connection_repair.domain.base import CamelModel
from connection_repair.domain.status_policy import Action
from connection_repair.preferences.model import Channel


class EpisodeNotice(CamelModel):
    """The notification state of one episode (its own item, never the Connection item)."""

    model_config = ConfigDict(frozen=True)

    episode_id: str
    connection_id: str
    external_customer_id: str
    institution_id: str | None = None
    institution_name: str | None = None
    action: Action
    status: str | None = None
    status_reason: str | None = None
    attention_since: datetime
    # The number of the next message (0 = the first, 1.. = reminders); due_at None: nothing more to send.
    next_message: int = 0
    due_at: datetime | None = None
    messages_sent: int = 0
    reminders_sent: int = 0
    # Failed deliveries of the due message (the provider refused it for now); reset when the episode moves on.
    delivery_attempts: int = 0
    # The first message was held through its institution's incident: it says the incident is over.
    held_by_incident: bool = False
    closed: bool = False
    resolution: str | None = None


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str
    sms: str
    language: str = "en"
    # The deployment's template could not make it: the project's own was used.
    template_fallback: bool = False
    # The customer's signed one-click unsubscribe link (RFC 8058), when the stack signs them: emails carry it in
    # their List-Unsubscribe header.
    unsubscribe_url: str | None = None


@dataclass(frozen=True)
class MessageClaim:
    episode_id: str
    number: int


@dataclass(frozen=True)
class ClaimRecord:
    state: str  # CLAIMED, SENT, UNCERTAIN, CANCELLED, REFUSED
    lease_until: datetime | None


@dataclass(frozen=True)
class CustomerNotifyState:
    last_sent_at: datetime | None = None
    # Addresses a provider refused for good, per channel: never used again (a new address is).
    unusable: Mapping[Channel, str] = field(default_factory=dict)
