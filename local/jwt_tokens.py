"""HS256 tokens for the local stack, and the checks API Gateway's JWT authorizer makes.

The standard library is enough for HS256 (an HMAC over two base64url parts); PyJWT would add a dependency for
~40 lines, and API Gateway's own rules (which claims, how they reach the handler) would still be ours to write.
``python -m local.jwt_tokens CUSTOMER`` prints a token (what ``make token`` runs).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from local.config import LocalConfig
from local.template import JwtAuthorizer, Resolver, jwt_authorizers, load_template


class Unauthorized(Exception):
    """API Gateway answers 401 {"message": "Unauthorized"}; the reason is only logged."""


@dataclass(frozen=True)
class JwtSettings:
    secret: str
    issuer: str
    audiences: tuple[str, ...]
    header: str = "authorization"


def settings_for(authorizer: JwtAuthorizer | None, config: LocalConfig) -> JwtSettings:
    """The template's issuer and audience when it has them, else the documented local defaults."""
    if authorizer is None:
        return JwtSettings(config.jwt_secret, config.jwt_issuer, (config.jwt_audience,))
    return JwtSettings(
        secret=config.jwt_secret,
        issuer=authorizer.issuer or config.jwt_issuer,
        audiences=authorizer.audiences or (config.jwt_audience,),
        header=authorizer.identity_source,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(
    subject: str, settings: JwtSettings, *, lifetime_seconds: int = 3600, extra: Mapping[str, Any] | None = None
) -> str:
    now = int(time.time())
    claims = {
        "sub": subject,
        "iss": settings.issuer,
        "aud": settings.audiences[0],
        "iat": now,
        "exp": now + lifetime_seconds,
        **(extra or {}),
    }
    signing_input = f"{_b64(b'{"alg":"HS256","typ":"JWT"}')}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}"
    signature = hmac.new(settings.secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def verify(
    header_value: str | None, settings: JwtSettings, scopes: Sequence[str] = (), *, now: float | None = None
) -> dict[str, Any]:
    """The token's claims, checked as API Gateway's JWT authorizer checks them; ``Unauthorized`` otherwise."""
    if not header_value:
        raise Unauthorized("no token")
    # API Gateway accepts the token with or without the "Bearer " prefix.
    token = header_value.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    try:
        header_part, payload_part, signature_part = token.split(".")
        header = json.loads(_unb64(header_part))
        claims = json.loads(_unb64(payload_part))
        signature = _unb64(signature_part)
    except ValueError:
        raise Unauthorized("malformed token") from None
    if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != "HS256":
        raise Unauthorized("unsupported token")
    expected = hmac.new(settings.secret.encode(), f"{header_part}.{payload_part}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise Unauthorized("bad signature")
    moment = time.time() if now is None else now
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] <= moment:
        raise Unauthorized("expired or no exp")
    for name in ("nbf", "iat"):
        if isinstance(claims.get(name), int | float) and claims[name] > moment:
            raise Unauthorized(f"{name} in the future")
    if claims.get("iss") != settings.issuer:
        raise Unauthorized("wrong issuer")
    audiences = claims.get("aud", claims.get("client_id"))
    audiences = [audiences] if isinstance(audiences, str) else audiences or []
    if not set(audiences) & set(settings.audiences):
        raise Unauthorized("wrong audience")
    if scopes:
        granted = str(claims.get("scope") or claims.get("scp") or "").split()
        if not set(granted) & set(scopes):
            raise Unauthorized("missing scope")
    return claims


def api_gateway_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as HTTP APIs hand them to Lambda: every value a string, lists as "[a b]"."""

    def text(value: Any) -> str:
        if isinstance(value, list):
            return "[" + " ".join(text(item) for item in value) + "]"
        if isinstance(value, bool):
            return str(value).lower()
        return value if isinstance(value, str) else json.dumps(value)

    return {name: text(value) for name, value in claims.items()}


def default_settings(config: LocalConfig) -> JwtSettings:
    """The settings of the template's first JWT authorizer (by name), for tokens issued outside a route."""
    template = load_template()
    resolver = Resolver(template, stack_name=config.stack_name, parameter_overrides=config.parameter_overrides)
    authorizers = jwt_authorizers(template, resolver)
    return settings_for(authorizers[min(authorizers)] if authorizers else None, config)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not args[0]:
        sys.exit("usage: python -m local.jwt_tokens <externalCustomerId>   (make token CUSTOMER=<id>)")
    print(issue(args[0], default_settings(LocalConfig.from_env())))


if __name__ == "__main__":
    main()
