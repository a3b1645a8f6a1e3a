"""Optimistic concurrency's retry: bounded, reading again only after a lost race, the last conflict raised."""

from __future__ import annotations

import pytest

from connection_repair.domain.errors import ConcurrentUpdate
from connection_repair.platform.retry import retry_on_conflict


def test_a_first_attempt_that_wins_reads_nothing():
    reads: list[int] = []
    result = retry_on_conflict(
        1, read=lambda: reads.append(1) or 2, attempt=lambda state: state * 10, conflict=ConcurrentUpdate, attempts=3
    )
    assert (result, reads) == (10, [])


def test_each_lost_race_reads_again_and_the_next_attempt_works_on_what_was_read():
    states = iter([2, 3])
    seen: list[int] = []

    def attempt(state: int) -> int:
        seen.append(state)
        if state < 3:
            raise ConcurrentUpdate(f"lost on {state}")
        return state

    assert retry_on_conflict(1, read=lambda: next(states), attempt=attempt, conflict=ConcurrentUpdate, attempts=3) == 3
    assert seen == [1, 2, 3]


def test_after_the_last_lost_race_the_last_conflict_is_raised_and_nothing_more_is_read():
    reads = iter(range(2, 100))
    seen: list[int] = []

    def attempt(state: int) -> int:
        seen.append(state)
        raise ConcurrentUpdate(f"lost on {state}")

    with pytest.raises(ConcurrentUpdate, match=r"^lost on 4$"):
        retry_on_conflict(1, read=lambda: next(reads), attempt=attempt, conflict=ConcurrentUpdate, attempts=4)
    assert seen == [1, 2, 3, 4]
    assert next(reads) == 5


def test_other_errors_are_not_retried():
    calls: list[int] = []

    def attempt(state: int) -> int:
        calls.append(state)
        raise KeyError(state)

    with pytest.raises(KeyError):
        retry_on_conflict(1, read=lambda: 2, attempt=attempt, conflict=ConcurrentUpdate, attempts=5)
    assert calls == [1]


def test_at_least_one_attempt_is_asked_for():
    with pytest.raises(ValueError, match=r"^attempts must be at least 1$"):
        retry_on_conflict(1, read=lambda: 2, attempt=lambda state: state, conflict=ConcurrentUpdate, attempts=0)


def test_one_attempt_is_one_attempt_and_its_conflict_is_raised():
    seen: list[int] = []

    def attempt(state: int) -> int:
        seen.append(state)
        raise ConcurrentUpdate("lost once")

    with pytest.raises(ConcurrentUpdate, match=r"^lost once$"):
        retry_on_conflict(1, read=lambda: 2, attempt=attempt, conflict=ConcurrentUpdate, attempts=1)
    assert seen == [1]
