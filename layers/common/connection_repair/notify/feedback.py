"""What a provider reports after a send: a hard bounce or a complaint makes the address unusable, so that no more
mail goes to it (and the customer's other channels, or none, are used from then on)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from connection_repair.notify.ports import NotificationStore
from connection_repair.platform.observability import logger
from connection_repair.preferences.model import Channel


class Verdict(StrEnum):
    BOUNCED = "BOUNCED"  # the receiving side said the address does not exist (a permanent bounce)
    COMPLAINED = "COMPLAINED"  # the customer marked the message as spam


@dataclass(frozen=True)
class ContactFeedback:
    """The provider's word on one address a message went to."""

    channel: Channel
    address: str
    verdict: Verdict
    # Whose address it was (the message's tag); None when the message carried no tag.
    external_customer_id: str | None


def record_feedback(store: NotificationStore, feedback: Sequence[ContactFeedback], *, now: datetime) -> Counter[str]:
    """Each address marked unusable, counted by verdict; feedback that names no customer is logged and left."""
    marked: Counter[str] = Counter()
    for each in feedback:
        if each.external_customer_id is None:
            logger.warning("Provider feedback for a message without its customer", verdict=each.verdict.value)
            continue
        store.mark_unusable(each.external_customer_id, each.channel, each.address, reason=each.verdict.value, now=now)
        marked[each.verdict.value] += 1
        logger.info(
            "Contact marked unusable",
            external_customer_id=each.external_customer_id,
            channel=each.channel.value,
            reason=each.verdict.value,
        )
    return marked
