"""When an event counts as having happened: Meld's stamp, unless it lies further ahead than a clock can be off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connection_repair.ingestion.service import ordered_at

RECEIVED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_a_stamp_in_the_past_or_now_is_kept():
    for stamp in (RECEIVED - timedelta(days=3), RECEIVED):
        assert ordered_at(stamp, received_at=RECEIVED, tolerance_seconds=300) == stamp


def test_a_stamp_ahead_by_the_tolerance_at_most_is_kept():
    at_limit = RECEIVED + timedelta(seconds=300)
    assert ordered_at(at_limit, received_at=RECEIVED, tolerance_seconds=300) == at_limit


def test_a_stamp_beyond_the_tolerance_counts_from_the_receipt():
    for stamp in (RECEIVED + timedelta(seconds=300, microseconds=1), datetime(2099, 1, 1, tzinfo=UTC)):
        assert ordered_at(stamp, received_at=RECEIVED, tolerance_seconds=300) == RECEIVED
