"""One message on the customer's channels, and what came of it: delivered, maybe delivered, or refused."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from connection_repair.notify.ports import NotificationChannel, SendRefused
from connection_repair.notify.records import Message
from connection_repair.platform.observability import logger
from connection_repair.preferences.model import Channel, NotificationPreferences


@dataclass(frozen=True)
class Refusal:
    channel: Channel
    address: str
    reason: str
    permanent: bool
    throttled: bool = False


@dataclass
class Delivery:
    # Each channel that took the message, with the provider's id of it.
    delivered: dict[Channel, str] = field(default_factory=dict)
    # Sends whose outcome is unknown (a timeout after the request went out): maybe delivered, never sent again.
    unknown: list[Channel] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    @property
    def maybe_sent(self) -> bool:
        return bool(self.delivered or self.unknown)

    @property
    def retryable(self) -> bool:
        """Nothing went out, and some channel may take it later."""
        return not self.maybe_sent and any(not refusal.permanent for refusal in self.refused)

    @property
    def throttled(self) -> bool:
        """Nothing went out, and only because the providers throttled the sends."""
        return not self.maybe_sent and bool(self.refused) and all(refusal.throttled for refusal in self.refused)

    @property
    def unusable(self) -> list[Refusal]:
        return [refusal for refusal in self.refused if refusal.permanent]


def deliver(
    message: Message,
    channels: Sequence[Channel],
    adapters: Mapping[Channel, NotificationChannel],
    preferences: NotificationPreferences,
    *,
    customer: str,
) -> Delivery:
    delivery = Delivery()
    for channel in channels:
        adapter = adapters.get(channel)
        address = preferences.address(channel)
        if adapter is None or address is None:
            continue
        try:
            delivery.delivered[channel] = adapter.send(address, message, customer=customer)
        except SendRefused as refused:
            delivery.refused.append(Refusal(channel, address, refused.reason, refused.permanent, refused.throttled))
            logger.warning(
                "Channel refused the message",
                channel=channel.value,
                reason=refused.reason,
                permanent=refused.permanent,
                external_customer_id=customer,
            )
        except Exception:
            delivery.unknown.append(channel)
            logger.exception("Channel send outcome unknown", channel=channel.value, external_customer_id=customer)
    return delivery
