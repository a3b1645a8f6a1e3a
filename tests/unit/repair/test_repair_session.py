"""When a connect token stops being usable: the earlier of its ``exp`` and issue time + 3 h."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from connection_repair.repair.session import token_expires_at

ISSUED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
THREE_HOURS_LATER = ISSUED_AT + timedelta(hours=3)


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_token(claims: object) -> str:
    """An unsigned-looking JWT: header.claims.signature, base64url without padding, as Meld sends it."""
    header = _segment(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    return f"{header}.{_segment(json.dumps(claims).encode())}.{_segment(b'not-a-real-signature')}"


def test_exp_earlier_than_three_hours_wins() -> None:
    # Given a token whose exp is one hour after issue
    exp = ISSUED_AT + timedelta(hours=1)
    token = make_token({"iat": int(ISSUED_AT.timestamp()), "exp": int(exp.timestamp())})

    # When / Then
    assert token_expires_at(token, ISSUED_AT) == exp


def test_meld_sample_token_with_four_hour_exp_is_capped_at_three_hours() -> None:
    # Given Meld's sample shape: exp - iat = 4 h
    iat = int(ISSUED_AT.timestamp())
    token = make_token({"sub": "customer", "iat": iat, "exp": iat + 4 * 3600})

    # When / Then: the guide's 3 hours is the earlier bound
    assert token_expires_at(token, ISSUED_AT) == THREE_HOURS_LATER


def test_fractional_exp_is_read() -> None:
    exp = ISSUED_AT.timestamp() + 90.5
    assert token_expires_at(make_token({"exp": exp}), ISSUED_AT) == ISSUED_AT + timedelta(seconds=90.5)


def test_lifetime_is_configurable() -> None:
    assert token_expires_at("opaque", ISSUED_AT, timedelta(minutes=30)) == ISSUED_AT + timedelta(minutes=30)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("opaque-token", id="not-a-jwt"),
        pytest.param("a.b", id="two-segments"),
        pytest.param("a.b.c.d", id="four-segments"),
        pytest.param("hdr.!!!not base64!!!.sig", id="bad-base64"),
        pytest.param("hdr.é.sig", id="non-ascii"),
        pytest.param(f"hdr.{_segment(b'not json')}.sig", id="not-json"),
        pytest.param(f"hdr.{_segment(b'\xff\xfe\x00')}.sig", id="not-utf8"),
        pytest.param(make_token([1, 2, 3]), id="claims-not-an-object"),
        pytest.param(make_token({"iat": 1}), id="no-exp"),
        pytest.param(make_token({"exp": "1772366400"}), id="string-exp"),
        pytest.param(make_token({"exp": None}), id="null-exp"),
        pytest.param(make_token({"exp": True}), id="boolean-exp"),
        pytest.param(make_token({"exp": 10**30}), id="exp-out-of-range"),
        pytest.param(f"hdr.{_segment(b'{"exp": NaN}')}.sig", id="nan-exp"),
        pytest.param(f"hdr.{_segment(b'{"exp": Infinity}')}.sig", id="infinite-exp"),
    ],
)
def test_unreadable_token_expires_three_hours_after_issue(token: str) -> None:
    assert token_expires_at(token, ISSUED_AT) == THREE_HOURS_LATER


def test_result_is_utc_even_when_issued_at_is_not() -> None:
    # Given an issue time in UTC+2
    issued_at = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))

    # When
    expires_at = token_expires_at("opaque", issued_at)

    # Then: the same instant, expressed in UTC
    assert expires_at.tzinfo is UTC
    assert expires_at == THREE_HOURS_LATER


def test_naive_issued_at_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        token_expires_at("opaque", datetime(2026, 3, 1, 12, 0))
