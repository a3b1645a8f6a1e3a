"""What a store of connections and events answers when a conditional write is refused."""

from __future__ import annotations


class DuplicateEvent(Exception):
    """The event id is already stored."""


class ConcurrentUpdate(Exception):
    """The connection changed between our read and our write."""
