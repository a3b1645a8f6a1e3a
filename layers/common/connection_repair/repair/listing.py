"""Which of a customer's connections the list shows: by default the ones the customer still has, needing action or not.

A connection that was replaced, deleted or never completed is history: the prompt has nothing to offer for it, and a
customer who relinked a bank twice would otherwise see it three times. ``include`` brings them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from connection_repair.domain.connection import Connection
from connection_repair.domain.status_policy import Action


class Past(StrEnum):
    """Why a connection is history, as the list's ``include`` names it."""

    SUPERSEDED = "superseded"  # replaced by a connection the customer completed
    DELETED = "deleted"  # DELETED at Meld
    ABANDONED = "abandoned"  # started (IN_PROGRESS) and never completed


def past(connection: Connection) -> Past | None:
    """Why this connection is history, or None when the customer still has it."""
    if connection.superseded_by is not None:
        return Past.SUPERSEDED
    if connection.status == "DELETED":
        return Past.DELETED
    if connection.status == "IN_PROGRESS":
        return Past.ABANDONED
    return None


@dataclass(frozen=True)
class Listing:
    """What the caller asked the list for."""

    # Only connections with something to show: an action for the customer, or WAIT ("nothing to do yet").
    needs_action: bool = False
    include: frozenset[Past] = frozenset()

    def shows(self, connection: Connection) -> bool:
        why_past = past(connection)
        if why_past is not None and why_past not in self.include:
            return False
        return not self.needs_action or connection.action != Action.NONE
