"""The messages an event asks for: an episode's (the first and its reminders), or the one "link again" message."""

from __future__ import annotations

from connection_repair.domain.bus_events import ConnectionAttentionEnded, ConnectionNeedsAttention
from connection_repair.domain.connection import Connection
from connection_repair.domain.status_policy import Action
from connection_repair.notify.records import EpisodeNotice

# How an episode ends when only a new link will help (repeated failed repairs, expired, deleted): the customer is
# told so once, in a message of its own (action START_NEW_CONNECTION, no reminders).
LINK_AGAIN: frozenset[str] = frozenset({"REPAIR_FAILED", "EXPIRED", "DELETED"})
LINK_AGAIN_SUFFIX = "#link-again"


# What a notice says of its connection, as the event that asked for it said it.
_ABOUT = ("connection_id", "institution_id", "institution_name", "status", "status_reason")


def _about(event: ConnectionNeedsAttention | ConnectionAttentionEnded) -> dict[str, str | None]:
    return {name: getattr(event, name) for name in _ABOUT}


def episode_notice(event: ConnectionNeedsAttention, customer: str) -> EpisodeNotice:
    return EpisodeNotice(
        episode_id=event.episode_id,
        external_customer_id=customer,
        action=event.action,
        attention_since=event.attention_since,
        **_about(event),
    )


def link_again_notice(ended: ConnectionAttentionEnded, customer: str) -> EpisodeNotice:
    """The one "link <bank> again" message of an episode that ended where only a new link helps."""
    return EpisodeNotice(
        episode_id=f"{ended.episode_id}{LINK_AGAIN_SUFFIX}",
        external_customer_id=customer,
        action=Action.START_NEW_CONNECTION,
        attention_since=ended.event_time,
        **_about(ended),
    )


def still_current(notice: EpisodeNotice, connection: Connection) -> bool:
    """Right before a send: whether the message is still true of the connection as it is now.

    An episode's message: the connection is still in that episode. A "link again" message: the connection still asks
    for a new link (no newer episode, not replaced meanwhile)."""
    if notice.action == Action.START_NEW_CONNECTION:
        return (
            connection.action == Action.START_NEW_CONNECTION
            and connection.episode_id is None
            and connection.superseded_by is None
        )
    return connection.episode_id == notice.episode_id
