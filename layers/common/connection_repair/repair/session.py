"""A repair session as the app sees it: when Meld's connect token stops being usable.

Meld's guide gives a connect token 3 hours, while the guide's own sample token says 4 (``exp - iat``). We report the
earlier of the two so the app never offers a token past its life. The token is Meld's: its signature is not ours to
verify, and apart from the ``exp`` claim it is opaque.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

DEFAULT_TOKEN_LIFETIME = timedelta(hours=3)


def token_expires_at(connect_token: str, issued_at: datetime, lifetime: timedelta = DEFAULT_TOKEN_LIFETIME) -> datetime:
    """The earlier of the token's ``exp`` claim and ``issued_at + lifetime``, in UTC.

    A token that is not a readable JWT, or has no numeric ``exp``, expires at ``issued_at + lifetime``.
    """
    if issued_at.utcoffset() is None:
        raise ValueError("issued_at must be timezone-aware")
    documented = (issued_at + lifetime).astimezone(UTC)
    claimed = _exp_claim(connect_token)
    return documented if claimed is None else min(claimed, documented)


def _exp_claim(token: str) -> datetime | None:
    """The JWT's ``exp`` as a UTC datetime, or None when there is no usable one. Never raises."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        # base64url without padding (RFC 7515); ValueError also covers binascii and Unicode errors.
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, RecursionError):
        return None
    if not isinstance(claims, dict):
        return None
    exp = claims.get("exp")
    # bool is an int in Python, but `"exp": true` is not a time.
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    try:
        return datetime.fromtimestamp(exp, tz=UTC)
    except (OverflowError, OSError, ValueError):  # out of range, inf or NaN
        return None
