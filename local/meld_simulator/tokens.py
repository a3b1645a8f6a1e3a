"""Connect tokens: JWT-shaped like Meld's, signed with a key only the simulator knows (opaque to clients)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

type Purpose = Literal["start", "repair"]


class TokenProblem(StrEnum):
    INVALID = "INVALID"
    EXPIRED = "EXPIRED"


class TokenError(Exception):
    def __init__(self, problem: TokenProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


@dataclass(frozen=True, slots=True)
class TokenClaims:
    connection: str
    customer: str
    purpose: Purpose
    iat: int
    exp: int
    jti: str


def _b64(data: bytes) -> str:
    # JWTs use unpadded base64url.
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    def __init__(self, lifetime: timedelta) -> None:
        self._lifetime = lifetime
        # A fresh key per simulator: tokens from an earlier run are unknown, as they would be to Meld.
        self._key = secrets.token_bytes(32)

    def issue(self, *, connection: str, customer: str, purpose: Purpose, now: datetime) -> str:
        iat = int(now.timestamp())
        claims = {
            "connection": connection,
            "customer": customer,
            "exp": iat + max(1, int(self._lifetime.total_seconds())),
            "iat": iat,
            "purpose": purpose,
            # Two tokens issued in the same second must still differ (each can be used once).
            "jti": secrets.token_hex(8),
        }
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{header}.{body}.{self._sign(f'{header}.{body}')}"

    def parse(self, token: str, *, now: datetime) -> TokenClaims:
        """The token's claims; ``TokenError`` when it is not ours, malformed, or expired."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError(TokenProblem.INVALID, "connectToken is not a valid token")
        header, body, signature = parts
        # Bytes, not str: compare_digest rejects non-ASCII strings and a token comes from the client.
        expected = self._sign(f"{header}.{body}").encode()
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            raise TokenError(TokenProblem.INVALID, "connectToken is not a valid token")
        try:
            raw: Any = json.loads(_unb64(body))
            claims = TokenClaims(
                connection=str(raw["connection"]),
                customer=str(raw["customer"]),
                purpose="repair" if raw["purpose"] == "repair" else "start",
                iat=int(raw["iat"]),
                exp=int(raw["exp"]),
                jti=str(raw["jti"]),
            )
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise TokenError(TokenProblem.INVALID, "connectToken is not a valid token") from None
        if now.timestamp() >= claims.exp:
            raise TokenError(TokenProblem.EXPIRED, "connectToken has expired")
        return claims

    def _sign(self, signing_input: str) -> str:
        return _b64(hmac.new(self._key, signing_input.encode("utf-8"), hashlib.sha256).digest())
