"""Which connections the list shows: history only when asked, and what "needs action" means."""

from __future__ import annotations

import pytest

from connection_repair.domain.connection import Connection
from connection_repair.domain.status_policy import Action, classify
from connection_repair.repair.listing import Listing, Past, past


def connection(status: str, reason: str | None = None, **fields: object) -> Connection:
    return Connection(connection_id="c", status=status, status_reason=reason, action=classify(status, reason), **fields)


@pytest.mark.parametrize(
    ("item", "why"),
    [
        (connection("ACTIVE"), None),
        (connection("RECONNECT_REQUIRED"), None),
        (connection("EXPIRED"), None),
        (connection("ACTIVE", superseded_by="d"), Past.SUPERSEDED),
        # Replaced, then deleted at Meld by the replacement: still "superseded", the reason the customer knows.
        (connection("DELETED", superseded_by="d"), Past.SUPERSEDED),
        (connection("DELETED"), Past.DELETED),
        (connection("IN_PROGRESS"), Past.ABANDONED),
    ],
)
def test_why_a_connection_is_history(item: Connection, why: Past | None):
    assert past(item) is why


def test_history_is_shown_only_for_the_reasons_included():
    deleted = connection("DELETED")
    assert not Listing().shows(deleted)
    assert not Listing(include=frozenset({Past.SUPERSEDED, Past.ABANDONED})).shows(deleted)
    assert Listing(include=frozenset({Past.DELETED})).shows(deleted)


@pytest.mark.parametrize(
    ("item", "shown"),
    [
        (connection("ACTIVE"), False),
        (connection("PARTIALLY_ACTIVE"), False),
        (connection("RECONNECT_REQUIRED"), True),
        (connection("ACTIVE", "ACCESS_EXPIRING_SOON"), True),
        (connection("DEGRADED"), True),
        (connection("EXPIRED"), True),
    ],
)
def test_needs_action_keeps_every_action_but_none(item: Connection, shown: bool):
    assert Listing(needs_action=True).shows(item) is shown
    assert Listing().shows(item)
    assert (item.action != Action.NONE) is shown
