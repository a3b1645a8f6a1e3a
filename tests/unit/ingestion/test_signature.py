from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from connection_repair.ingestion.signature import RejectionReason, SignatureError, sign, verify

SECRET = "whsec-current"
PREVIOUS = "whsec-previous"
URL = "https://hooks.example.com/webhooks/meld"
BODY = b'{"eventId":"e1","eventType":"TEST","timestamp":"2026-11-25T12:00:00Z"}'
NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
STAMP = "2026-11-25T12:00:00.000000Z"


def headers(signature: str, timestamp: str = STAMP) -> dict[str, str]:
    return {"meld-signature": signature, "meld-signature-timestamp": timestamp}


def check(
    hdrs: dict[str, str], body: bytes = BODY, *, url: str = URL, secrets: tuple[str, ...] = (SECRET,), now=NOW
) -> None:
    verify(hdrs, body, url=url, secrets=secrets, tolerance_seconds=300, now=now)


def reason_of(hdrs: dict[str, str], **kwargs) -> RejectionReason:
    with pytest.raises(SignatureError) as caught:
        check(hdrs, **kwargs)
    assert str(caught.value) == caught.value.message  # what the 401 says is what the error says
    return caught.value.reason


def test_signature_is_padded_base64url_of_hmac_sha256_over_timestamp_url_and_body():
    # Given Meld's documented scheme, computed independently here
    import hashlib
    import hmac

    digest = hmac.new(SECRET.encode(), f"{STAMP}.{URL}.".encode() + BODY, hashlib.sha256).digest()
    # Then sign() produces exactly that, with padding
    assert sign(SECRET, STAMP, URL, BODY) == base64.urlsafe_b64encode(digest).decode()
    assert sign(SECRET, STAMP, URL, BODY).endswith("=")


def test_valid_signature_is_accepted():
    check(headers(sign(SECRET, STAMP, URL, BODY)))


def test_tampered_body_is_rejected():
    assert reason_of(headers(sign(SECRET, STAMP, URL, BODY)), body=BODY + b" ") == RejectionReason.SIGNATURE_MISMATCH


def test_signature_made_for_another_url_is_rejected():
    signature = sign(SECRET, STAMP, "https://proxy.internal/webhooks/meld", BODY)
    assert reason_of(headers(signature)) == RejectionReason.SIGNATURE_MISMATCH


def test_timestamp_is_part_of_what_is_signed():
    signature = sign(SECRET, "2026-11-25T12:00:01.000000Z", URL, BODY)
    assert reason_of(headers(signature)) == RejectionReason.SIGNATURE_MISMATCH


def test_missing_padding_is_tolerated_since_it_carries_no_information():
    check(headers(sign(SECRET, STAMP, URL, BODY).rstrip("=")))


@pytest.mark.parametrize("bad", ["not base64 !!", "c2hvcnQ=", ""])
def test_malformed_or_missing_signature_is_rejected(bad: str):
    expected = RejectionReason.MISSING_SIGNATURE if bad == "" else RejectionReason.MALFORMED_SIGNATURE
    assert reason_of(headers(bad)) == expected


def test_missing_timestamp_is_rejected():
    assert reason_of({"meld-signature": sign(SECRET, STAMP, URL, BODY)}) == RejectionReason.MISSING_TIMESTAMP


def test_malformed_timestamp_is_rejected():
    signature = sign(SECRET, "yesterday", URL, BODY)
    assert reason_of(headers(signature, "yesterday")) == RejectionReason.MALFORMED_TIMESTAMP


def test_previous_secret_is_accepted_during_rotation():
    signature = sign(PREVIOUS, STAMP, URL, BODY)
    check(headers(signature), secrets=(SECRET, PREVIOUS))
    assert reason_of(headers(signature), secrets=(SECRET,)) == RejectionReason.SIGNATURE_MISMATCH


@pytest.mark.parametrize("configured", [(SECRET, PREVIOUS), (PREVIOUS, SECRET)], ids=["current-first", "current-last"])
def test_during_rotation_each_configured_secret_verifies_wherever_it_stands(configured: tuple[str, str]):
    # Meld signs with the new secret as soon as it is rotated, while old deliveries still carry the old one.
    for secret in (SECRET, PREVIOUS):
        check(headers(sign(secret, STAMP, URL, BODY)), secrets=configured)
    assert reason_of(headers(sign("whsec-neither", STAMP, URL, BODY)), secrets=configured) == (
        RejectionReason.SIGNATURE_MISMATCH
    )


def test_an_empty_secret_beside_a_real_one_is_ignored_not_matched():
    # An unset previous secret must not turn into a key anybody can sign with.
    check(headers(sign(SECRET, STAMP, URL, BODY)), secrets=("", SECRET))
    assert reason_of(headers(sign("", STAMP, URL, BODY)), secrets=(SECRET, "")) == RejectionReason.SIGNATURE_MISMATCH


def test_no_secret_configured_fails_closed():
    signature = sign("", STAMP, URL, BODY)
    assert reason_of(headers(signature), secrets=("",)) == RejectionReason.NO_SECRET_CONFIGURED
    assert reason_of(headers(signature), secrets=()) == RejectionReason.NO_SECRET_CONFIGURED


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-300, True), (-301, False), (300, True), (301, False), (0, True)],
)
def test_tolerance_edges_in_both_directions(offset: int, accepted: bool):
    signed_at = NOW + timedelta(seconds=offset)
    stamp = signed_at.isoformat().replace("+00:00", "Z")
    hdrs = headers(sign(SECRET, stamp, URL, BODY), stamp)
    if accepted:
        check(hdrs)
    else:
        assert reason_of(hdrs) == RejectionReason.TIMESTAMP_OUT_OF_TOLERANCE


@pytest.mark.parametrize("stamp", [str(int(NOW.timestamp())), str(int(NOW.timestamp() * 1000))])
def test_epoch_timestamps_in_seconds_or_milliseconds_are_understood(stamp: str):
    check(headers(sign(SECRET, stamp, URL, BODY), stamp))


def test_non_ascii_body_is_verified_as_raw_bytes():
    body = '{"institutionName":"Banco Santándér"}'.encode()
    check(headers(sign(SECRET, STAMP, URL, body)), body=body)


GOOD = sign(SECRET, STAMP, URL, BODY)


@pytest.mark.parametrize(
    ("hdrs", "secrets", "reason", "message"),
    [
        ({"meld-signature-timestamp": STAMP}, (SECRET,), "MISSING_SIGNATURE", "Meld-Signature header is missing"),
        ({"meld-signature": GOOD}, (SECRET,), "MISSING_TIMESTAMP", "Meld-Signature-Timestamp header is missing"),
        (
            headers("c2hvcnQ="),
            (SECRET,),
            "MALFORMED_SIGNATURE",
            "Meld-Signature is not a base64url HMAC-SHA256 value",
        ),
        (headers(GOOD, "soon"), (SECRET,), "MALFORMED_TIMESTAMP", "Meld-Signature-Timestamp is not a timestamp"),
        (
            headers(GOOD, "2026-11-25T11:00:00Z"),
            (SECRET,),
            "TIMESTAMP_OUT_OF_TOLERANCE",
            "Meld-Signature-Timestamp is more than 300 s away from now",
        ),
        (headers(GOOD), ("",), "NO_SECRET_CONFIGURED", "no webhook secret is configured"),
        (headers(GOOD), (PREVIOUS,), "SIGNATURE_MISMATCH", "Meld-Signature does not match the request"),
    ],
    ids=lambda value: value if isinstance(value, str) and value.isupper() else "",
)
def test_every_rejection_names_its_reason_in_words_meld_support_can_act_on(
    hdrs: dict[str, str], secrets: tuple[str, ...], reason: str, message: str
):
    with pytest.raises(SignatureError) as caught:
        check(hdrs, secrets=secrets)
    assert (caught.value.reason, caught.value.message) == (reason, message)


def test_a_timestamp_without_an_offset_is_read_as_utc():
    naive = "2026-11-25T12:00:00"
    check(headers(sign(SECRET, naive, URL, BODY), naive))
    assert reason_of(headers(sign(SECRET, naive, URL, BODY), naive), now=NOW + timedelta(seconds=301)) == (
        RejectionReason.TIMESTAMP_OUT_OF_TOLERANCE
    )
