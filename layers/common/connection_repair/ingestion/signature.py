"""Meld's webhook signature: base64url (padded) HMAC-SHA256 over ``<timestamp>.<url>.<raw body>``.

Verification fails closed: any missing, malformed or mismatching part is a ``SignatureError`` naming the reason.
The timestamp header's format is not documented, so ISO-8601 and epoch seconds or milliseconds are all accepted;
the signed string always uses the header value exactly as received.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum

SIGNATURE_HEADER = "meld-signature"
TIMESTAMP_HEADER = "meld-signature-timestamp"


class RejectionReason(StrEnum):
    MISSING_SIGNATURE = "MISSING_SIGNATURE"
    MISSING_TIMESTAMP = "MISSING_TIMESTAMP"
    MALFORMED_SIGNATURE = "MALFORMED_SIGNATURE"
    MALFORMED_TIMESTAMP = "MALFORMED_TIMESTAMP"
    TIMESTAMP_OUT_OF_TOLERANCE = "TIMESTAMP_OUT_OF_TOLERANCE"
    SIGNATURE_MISMATCH = "SIGNATURE_MISMATCH"
    NO_SECRET_CONFIGURED = "NO_SECRET_CONFIGURED"


class SignatureError(Exception):
    def __init__(self, reason: RejectionReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def sign(secret: str, timestamp: str, url: str, raw_body: bytes) -> str:
    """The signature Meld sends; used by the verifier, the simulator and the test fixtures."""
    message = timestamp.encode() + b"." + url.encode() + b"." + raw_body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


def parse_timestamp(value: str) -> datetime:
    """Parse the timestamp header: ISO-8601, or epoch seconds / milliseconds."""
    text = value.strip()
    if text.isdigit():
        number = int(text)
        seconds = number / 1000 if number > 10**11 else number
        return datetime.fromtimestamp(seconds, tz=UTC)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _decode_signature(value: str) -> bytes:
    # Meld pads; accept a missing pad too, since padding carries no information.
    text = value.strip()
    decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(decoded) != hashlib.sha256().digest_size:
        raise ValueError("wrong length")
    return decoded


def verify(
    headers: Mapping[str, str],
    raw_body: bytes,
    *,
    url: str,
    secrets: Sequence[str],
    tolerance_seconds: int,
    now: datetime,
) -> None:
    """Raise ``SignatureError`` unless the request was signed by Meld with one of ``secrets``.

    ``headers`` must have lower-case names (API Gateway HTTP APIs deliver them so).
    """
    signature = headers.get(SIGNATURE_HEADER)
    if not signature:
        raise SignatureError(RejectionReason.MISSING_SIGNATURE, "Meld-Signature header is missing")
    timestamp = headers.get(TIMESTAMP_HEADER)
    if not timestamp:
        raise SignatureError(RejectionReason.MISSING_TIMESTAMP, "Meld-Signature-Timestamp header is missing")
    try:
        received = _decode_signature(signature)
    except (binascii.Error, ValueError):
        raise SignatureError(
            RejectionReason.MALFORMED_SIGNATURE, "Meld-Signature is not a base64url HMAC-SHA256 value"
        ) from None
    try:
        signed_at = parse_timestamp(timestamp)
    except (ValueError, OverflowError, OSError):
        raise SignatureError(
            RejectionReason.MALFORMED_TIMESTAMP, "Meld-Signature-Timestamp is not a timestamp"
        ) from None
    if abs((now - signed_at).total_seconds()) > tolerance_seconds:
        raise SignatureError(
            RejectionReason.TIMESTAMP_OUT_OF_TOLERANCE,
            f"Meld-Signature-Timestamp is more than {tolerance_seconds} s away from now",
        )
    usable = [secret for secret in secrets if secret]
    if not usable:
        raise SignatureError(RejectionReason.NO_SECRET_CONFIGURED, "no webhook secret is configured")
    # Check every secret (no early exit) so timing does not tell which one matched.
    matched = False
    for secret in usable:
        expected = base64.urlsafe_b64decode(sign(secret, timestamp, url, raw_body))
        matched |= hmac.compare_digest(expected, received)
    if not matched:
        raise SignatureError(RejectionReason.SIGNATURE_MISMATCH, "Meld-Signature does not match the request")
