"""How one webhook moves a connection's state: ordering, the status policy and episodes. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connection_repair.domain.bus_events import (
    AnyDownstreamEvent,
    ConnectionAttentionEnded,
    ConnectionNeedsAttention,
    ConnectionReplaced,
)
from connection_repair.domain.connection import Connection, ConnectionChange, event_order_key
from connection_repair.domain.status_policy import ENDS_EPISODE, NEEDS_ATTENTION, USABLE_STATUSES, Action, classify

# After this many failed repairs the customer is told to start a new connection (MAX_FAILED_REPAIRS).
DEFAULT_MAX_FAILED_REPAIRS = 3


@dataclass(frozen=True)
class Transition:
    connection: Connection
    downstream: list[AnyDownstreamEvent] = field(default_factory=list)
    stale: bool = False


def is_stale(current: Connection | None, event_time: datetime, event_id: str, *, completion: bool = False) -> bool:
    """An event is stale when the connection already reflects a newer (or the same) status-bearing event.

    The event id breaks ties between equal timestamps so every delivery order ends in the same state. A completion (a
    change without a status) is never stale: Meld stamps it and the status change sent with it in either order.
    """
    if completion or current is None or current.last_event_at is None:
        return False
    return event_order_key(event_time, event_id) <= event_order_key(current.last_event_at, current.last_event_id or "")


def _resolution(status: str | None, action: Action) -> str:
    if status in ("DELETED", "EXPIRED"):
        return status
    if action == Action.START_NEW_CONNECTION:
        return "REPAIR_FAILED"
    if action in NEEDS_ATTENTION and status != "ACTIVE":
        return "SUPERSEDED"
    return "REPAIRED"


# PARTIALLY_ACTIVE works as a replacement only when some accounts aggregated; with INACTIVE_DUPLICATE it is Meld
# saying the customer linked a bank they had linked already, and Meld keeps the other connection active.
REPLACEMENT_COMPLETING_REASONS: frozenset[str | None] = frozenset({None, "PARTIAL_AGGREGATION_SUCCESS"})
INACTIVE_DUPLICATE = ("PARTIALLY_ACTIVE", "INACTIVE_DUPLICATE")


def completes_a_replacement(status: str | None, reason: str | None) -> bool:
    """Whether a connection started to replace another now works as its replacement: ACTIVE, or PARTIALLY_ACTIVE
    with some accounts aggregated. Never as Meld's inactive duplicate (the replacer would delete the connection Meld
    keeps active)."""
    if status == "ACTIVE":
        return True
    return status == "PARTIALLY_ACTIVE" and reason in REPLACEMENT_COMPLETING_REASONS


def apply_change(
    current: Connection | None,
    change: ConnectionChange,
    *,
    event_id: str,
    event_time: datetime,
    new_episode_id: str,
    max_failed_repairs: int = DEFAULT_MAX_FAILED_REPAIRS,
) -> Transition:
    """The connection after ``change``, and the downstream events it causes.

    Failed repairs: a completion (the customer finished the widget) after a recorded repair attempt, with the status
    Meld sends with it still asking for a repair, counts one failure per attempt (``_verdict``). After
    ``max_failed_repairs`` the action becomes START_NEW_CONNECTION (Meld's way out) until the connection works again.
    """
    if current is not None and is_stale(current, event_time, event_id, completion=not change.carries_status):
        return Transition(connection=current, stale=True)

    base = current or Connection(connection_id=change.connection_id)
    status, reason = base.status, base.status_reason
    if change.status is not None:
        status, reason = change.status, change.status_reason
    elif status in (None, "IN_PROGRESS"):
        # A COMPLETED event carries no status: completing the widget makes a new connection ACTIVE.
        status, reason = "ACTIVE", None
    action = classify(status, reason)

    verdict = _verdict(base, change, event_time, action)
    failed_repairs = base.failed_repairs + (1 if verdict == "FAILED" else 0)
    repair_pending = base.repair_pending and verdict != "FAILED"
    completed_at = event_time if verdict == "AWAITED" else base.completed_at if repair_pending else None
    if status in USABLE_STATUSES:
        failed_repairs, repair_pending, completed_at = 0, False, None
    if base.superseded_by is not None:
        # Replaced by a newer connection: nothing left for the customer to do with this one.
        action = Action.NONE
    elif action == Action.REPAIR and failed_repairs >= max_failed_repairs:
        action = Action.START_NEW_CONNECTION

    updated = base.model_copy(
        update={
            "external_customer_id": change.external_customer_id or base.external_customer_id,
            "customer_id": change.customer_id or base.customer_id,
            "institution_id": change.institution_id or base.institution_id,
            "institution_name": change.institution_name or base.institution_name,
            "status": status,
            "status_reason": reason,
            "action": action,
            "last_event_at": event_time if change.carries_status else base.last_event_at,
            "last_event_id": event_id if change.carries_status else base.last_event_id,
            "failed_repairs": failed_repairs,
            "repair_pending": repair_pending,
            "completed_at": completed_at,
            "version": base.version + 1,
        }
    )
    downstream: list[AnyDownstreamEvent] = []
    # A replacement completes on what Meld says of its status, never on a completion alone (it may be a duplicate).
    duplicate = (status, reason) == INACTIVE_DUPLICATE
    replacing = updated.replaces_connection_id is not None and change.carries_status
    if replacing and (duplicate or completes_a_replacement(status, reason)):
        # Announced once: the replacer deletes the old connection at Meld, or for a duplicate first finds which
        # connection Meld keeps (never deleting that one).
        downstream.append(
            ConnectionReplaced(
                connection_id=updated.connection_id,
                replaced_connection_id=updated.replaces_connection_id,
                external_customer_id=updated.external_customer_id,
                event_time=event_time,
                inactive_duplicate=duplicate,
                event_id=event_id,
            )
        )
        updated = updated.model_copy(update={"replaces_connection_id": None})
    common = {
        "connection_id": updated.connection_id,
        "external_customer_id": updated.external_customer_id,
        "institution_id": updated.institution_id,
        "institution_name": updated.institution_name,
        "status": status,
        "status_reason": reason,
        "action": action,
        "event_time": event_time,
        "event_id": event_id,
    }

    # The open episode ends when nothing is left to do, or when what the customer must do changes.
    episode_over = action in ENDS_EPISODE or (action in NEEDS_ATTENTION and action != base.episode_action)
    if base.episode_id is not None and base.attention_since is not None and episode_over:
        downstream.append(
            ConnectionAttentionEnded(
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
    elif base.external_customer_id is None and updated.external_customer_id is not None:
        # The episode opened before anyone knew whose connection this is, so nobody was told: announce it now.
        announced = _open_episode(updated, common)
        if announced is not None:
            downstream.append(announced)
    return Transition(connection=updated, downstream=downstream)


def _verdict(base: Connection, change: ConnectionChange, event_time: datetime, action: Action) -> str | None:
    """What this event says of a pending repair: FAILED, AWAITED (a completion whose verdict is the next status event),
    or None (nothing, or success, which the usable status records).

    Meld sends the completion and the status change "in tandem", stamped in either order: the completion's verdict is
    the status known once both are in, whichever came first. A status that still asks for a repair is a failure.
    """
    if not base.repair_pending or base.last_repair_at is None:
        return None
    if change.completed:
        if base.last_repair_at >= event_time or action != Action.REPAIR:
            return None  # an earlier session's completion, or the status already says it worked
        status_since_attempt = base.last_event_at is not None and base.last_event_at > base.last_repair_at
        return "FAILED" if status_since_attempt else "AWAITED"
    if base.completed_at is not None and action == Action.REPAIR:
        return "FAILED"
    return None


def _open_episode(connection: Connection, common: dict[str, Any]) -> ConnectionNeedsAttention | None:
    """The announcement of ``connection``'s open episode, if it has one."""
    if connection.episode_id is None or connection.attention_since is None:
        return None
    return ConnectionNeedsAttention(
        **common, episode_id=connection.episode_id, attention_since=connection.attention_since
    )


def mark_replaced(current: Connection, *, replacement_id: str, at: datetime, event_id: str | None) -> Transition:
    """``current`` replaced by ``replacement_id`` (as Meld's ``event_id`` said): its episode ends (SUPERSEDED), it
    asks nothing more.

    Meld's DELETED webhook follows the deletion; ``apply_change`` keeps a superseded connection's action at NONE.
    """
    if current.superseded_by == replacement_id:
        return Transition(connection=current)
    updated = current.model_copy(
        update={
            "superseded_by": replacement_id,
            "action": Action.NONE,
            "repair_pending": False,
            "completed_at": None,
            "version": current.version + 1,
        }
    )
    downstream: list[AnyDownstreamEvent] = []
    if current.episode_id is not None and current.attention_since is not None:
        downstream.append(
            ConnectionAttentionEnded(
                connection_id=current.connection_id,
                external_customer_id=current.external_customer_id,
                institution_id=current.institution_id,
                institution_name=current.institution_name,
                status=current.status,
                status_reason=current.status_reason,
                action=Action.NONE,
                episode_id=current.episode_id,
                event_time=at,
                event_id=event_id,
                resolution="SUPERSEDED",
                attention_since=current.attention_since,
            )
        )
        updated = updated.model_copy(
            update={"episode_id": None, "episode_action": None, "attention_since": None, "repair_attempts": 0}
        )
    return Transition(connection=updated, downstream=downstream)


@dataclass(frozen=True)
class SilentUpdate:
    """A change that, if ``holds`` for the stored connection, applies without any downstream event.

    It lets ingestion write in one request without reading first: the store turns the expectation into a
    condition, and only when it fails (with the stored item in hand) does the full ``apply_change`` run.
    """

    order_key: str
    fields: dict[str, Any]
    # Exactly one of these describes the episode the connection must be in.
    episode_action: Action | None = None
    no_episode: bool = False
    # COMPLETED events: the stored status must already be settled (present and not IN_PROGRESS), and they are not
    # ordered against status events (no order condition, the order key is left as it is).
    settled_status: bool = False
    ordered: bool = True

    def holds(self, current: Connection | None) -> bool:
        """The expectation, evaluated in Python (the store evaluates the same thing as a condition)."""
        if current is None or not _plain(current):
            return False
        if (
            self.ordered
            and current.last_event_at is not None
            and event_order_key(current.last_event_at, current.last_event_id or "") >= self.order_key
        ):
            return False
        if self.episode_action is not None and (
            current.episode_id is None
            or current.attention_since is None
            or current.episode_action != self.episode_action
        ):
            return False
        if self.no_episode and current.episode_id is not None:
            return False
        if "external_customer_id" in self.fields and current.external_customer_id is None and current.episode_id:
            return False  # an open episode nobody was told about: the full transition announces it
        return not (self.settled_status and current.status in (None, "IN_PROGRESS"))


def _plain(current: Connection) -> bool:
    """No repair or replacement bookkeeping under way: the silent path leaves those to ``apply_change``."""
    return (
        current.superseded_by is None
        and current.replaces_connection_id is None
        and not current.repair_pending
        and current.failed_repairs == 0
    )


def silent_update(change: ConnectionChange, *, event_id: str, event_time: datetime) -> SilentUpdate:
    """The fields ``change`` sets when it causes no downstream event, and what must hold of the connection for that."""
    fields: dict[str, Any] = {
        name: value
        for name, value in (
            ("external_customer_id", change.external_customer_id),
            ("customer_id", change.customer_id),
            ("institution_id", change.institution_id),
            ("institution_name", change.institution_name),
        )
        if value is not None
    }
    key = event_order_key(event_time, event_id)
    if not change.carries_status:
        return SilentUpdate(order_key=key, fields=fields, settled_status=True, ordered=False)
    fields |= {"last_event_at": event_time, "last_event_id": event_id}
    action = classify(change.status, change.status_reason)
    fields |= {"status": change.status, "status_reason": change.status_reason, "action": action}
    if action in NEEDS_ATTENTION:
        return SilentUpdate(order_key=key, fields=fields, episode_action=action)
    if action in ENDS_EPISODE:
        return SilentUpdate(order_key=key, fields=fields, no_episode=True)
    return SilentUpdate(order_key=key, fields=fields)
