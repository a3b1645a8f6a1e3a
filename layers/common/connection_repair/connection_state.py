"""How one webhook moves a connection's state: ordering, the status policy and episodes. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from connection_repair.models import (
    AnyDownstreamEvent,
    Connection,
    ConnectionChange,
    ConnectionNeedsAttention,
    ConnectionRepaired,
)
from connection_repair.status_policy import ENDS_EPISODE, NEEDS_ATTENTION, Action, classify


@dataclass(frozen=True)
class Transition:
    connection: Connection
    downstream: list[AnyDownstreamEvent] = field(default_factory=list)
    stale: bool = False


def is_stale(current: Connection | None, event_time: datetime, event_id: str) -> bool:
    """An event is stale when the connection already reflects a newer (or the same) event.

    The event id breaks ties between equal timestamps so every delivery order ends in the same state.
    """
    if current is None or current.last_event_at is None:
        return False
    return (event_time, event_id) <= (current.last_event_at, current.last_event_id or "")


def _resolution(status: str | None, action: Action) -> str:
    if status in ("DELETED", "EXPIRED"):
        return status
    if action in NEEDS_ATTENTION and status != "ACTIVE":
        return "SUPERSEDED"
    return "REPAIRED"


def apply_change(
    current: Connection | None,
    change: ConnectionChange,
    *,
    event_id: str,
    event_time: datetime,
    new_episode_id: str,
) -> Transition:
    """The connection after ``change``, and the downstream events it causes."""
    if current is not None and is_stale(current, event_time, event_id):
        return Transition(connection=current, stale=True)

    base = current or Connection(connection_id=change.connection_id)
    status, reason = base.status, base.status_reason
    if change.status is not None:
        status, reason = change.status, change.status_reason
    elif status in (None, "IN_PROGRESS"):
        # A COMPLETED event carries no status: completing the widget makes a new connection ACTIVE.
        status, reason = "ACTIVE", None
    action = classify(status, reason)

    updated = base.model_copy(
        update={
            "external_customer_id": change.external_customer_id or base.external_customer_id,
            "customer_id": change.customer_id or base.customer_id,
            "institution_id": change.institution_id or base.institution_id,
            "institution_name": change.institution_name or base.institution_name,
            "status": status,
            "status_reason": reason,
            "action": action,
            "last_event_at": event_time,
            "last_event_id": event_id,
            "version": base.version + 1,
        }
    )
    downstream: list[AnyDownstreamEvent] = []
    common = {
        "connection_id": updated.connection_id,
        "external_customer_id": updated.external_customer_id,
        "institution_id": updated.institution_id,
        "institution_name": updated.institution_name,
        "status": status,
        "status_reason": reason,
        "action": action,
        "event_time": event_time,
    }

    # The open episode ends when nothing is left to do, or when what the customer must do changes.
    episode_over = action in ENDS_EPISODE or (action in NEEDS_ATTENTION and action != base.episode_action)
    if base.episode_id is not None and base.attention_since is not None and episode_over:
        downstream.append(
            ConnectionRepaired(
                **common,
                episode_id=base.episode_id,
                resolution=_resolution(status, action),
                attention_since=base.attention_since,
            )
        )
        updated = updated.model_copy(
            update={"episode_id": None, "episode_action": None, "attention_since": None, "repair_attempts": 0}
        )

    if action in NEEDS_ATTENTION and updated.episode_id is None:
        updated = updated.model_copy(
            update={"episode_id": new_episode_id, "episode_action": action, "attention_since": event_time}
        )
        downstream.append(ConnectionNeedsAttention(**common, episode_id=new_episode_id, attention_since=event_time))
    return Transition(connection=updated, downstream=downstream)
