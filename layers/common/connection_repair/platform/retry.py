"""Optimistic concurrency: read, change a copy, write on condition that nobody wrote meanwhile; on conflict, again."""

from __future__ import annotations

from collections.abc import Callable


def retry_on_conflict[State, Result](
    first: State,
    *,
    read: Callable[[], State],
    attempt: Callable[[State], Result],
    conflict: type[Exception],
    attempts: int,
) -> Result:
    """``attempt(first)``; each time it raises ``conflict`` (another writer won), ``attempt(read())`` again.

    Bounded: after ``attempts`` lost races the last ``conflict`` is raised, and the caller decides what that means.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    current = first
    for number in range(attempts):
        if number:
            current = read()
        try:
            return attempt(current)
        except conflict as error:
            lost = error
    raise lost
