"""The local stack's identity provider, and the checks API Gateway's JWT authorizer makes of its tokens.

API Gateway's JWT authorizer trusts an OIDC issuer: it reads ``<issuer>/.well-known/openid-configuration``, then the
keys at its ``jwks_uri``, and accepts RS256/ES256-family tokens signed by one of them (the header's ``kid`` names
it) for the configured issuer and audiences, within ``exp`` and ``nbf``. The local stack is such an issuer
(``LocalIssuer``, served by ``local.web``) and its gateway checks tokens the same way (``verify`` with
``DiscoveredKeys``). The signing key is an RSA key kept in ``.local/`` (made on first use), so ``make token`` in
another process signs with the key the running stack publishes. PyJWT does the cryptography and the registered
claims; API Gateway's own rules (audience or ``client_id``, scopes, claims as strings) are below.
``python -m local.jwt_tokens CUSTOMER`` prints a token (what ``make token`` runs).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from local.config import LocalConfig
from local.template import JwtAuthorizer, Resolver, jwt_authorizers, load_template

# What API Gateway's JWT authorizers accept (JwtConfiguration.defaultAlgorithms); never HS256 or "none".
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"


class Unauthorized(Exception):
    """API Gateway answers 401 {"message": "Unauthorized"}; the reason is only logged."""


@dataclass(frozen=True)
class JwtSettings:
    issuer: str
    audiences: tuple[str, ...]
    header: str = "authorization"


def settings_for(authorizer: JwtAuthorizer | None, config: LocalConfig) -> JwtSettings:
    """The template's issuer and audience when it has them, else the local issuer's."""
    if authorizer is None:
        return JwtSettings(config.jwt_issuer, (config.jwt_audience,))
    return JwtSettings(
        issuer=authorizer.issuer or config.jwt_issuer,
        audiences=authorizer.audiences or (config.jwt_audience,),
        header=authorizer.identity_source,
    )


class SigningKey:
    """An RSA key and its public JWK; ``kid`` is the key's RFC 7638 thumbprint."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self.private_key = private_key

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """The key in ``path``; made there first (readable by its owner only) when there is none."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = cls.generate().private_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            temporary = path.with_name(f".{path.name}.{os.getpid()}")
            temporary.write_bytes(pem)
            temporary.chmod(0o600)
            try:
                os.link(temporary, path)  # the first writer wins; a concurrent one reads its key below
            except FileExistsError:
                pass
            finally:
                temporary.unlink()
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        return cls(key)

    @cached_property
    def public_jwk(self) -> dict[str, str]:
        jwk: dict[str, str] = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return jwk | {"kid": self.kid, "use": "sig", "alg": "RS256"}

    @cached_property
    def kid(self) -> str:
        thumbprint = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        canonical = json.dumps({name: thumbprint[name] for name in ("e", "kty", "n")}, separators=(",", ":"))
        return jwt.utils.base64url_encode(hashlib.sha256(canonical.encode()).digest()).decode()


@dataclass(frozen=True)
class LocalIssuer:
    """The local stack's OIDC issuer: its discovery document, its keys, and tokens for a customer."""

    url: str
    audience: str
    key: SigningKey

    def issue(self, subject: str, *, lifetime_seconds: int = 3600, extra: Mapping[str, Any] | None = None) -> str:
        now = int(time.time())
        claims = {
            "sub": subject,
            "iss": self.url,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_seconds,
            **(extra or {}),
        }
        return jwt.encode(claims, self.key.private_key, algorithm="RS256", headers={"kid": self.key.kid})

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": self.url.rstrip("/") + JWKS_PATH,
            "token_endpoint": self.url.rstrip("/") + "/token",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.public_jwk]}


class VerificationKeys(Protocol):
    def key_for(self, token: str) -> Any:
        """The public key the token's ``kid`` names; ``Unauthorized`` when the issuer has none."""
        ...


class DiscoveredKeys:
    """An issuer's keys as API Gateway finds them: discovery document, then ``jwks_uri`` (cached, refetched for an
    unknown ``kid``)."""

    def __init__(self, issuer: str, *, timeout: float = 5.0) -> None:
        self._issuer = issuer
        self._timeout = timeout
        self._client: jwt.PyJWKClient | None = None

    def key_for(self, token: str) -> Any:
        try:
            if self._client is None:
                response = httpx.get(self._issuer.rstrip("/") + DISCOVERY_PATH, timeout=self._timeout)
                response.raise_for_status()
                self._client = jwt.PyJWKClient(response.json()["jwks_uri"], timeout=int(self._timeout))
            return self._client.get_signing_key_from_jwt(token).key
        except (httpx.HTTPError, ValueError, KeyError, jwt.PyJWKClientError, jwt.DecodeError) as error:
            raise Unauthorized(f"no key for the token from {self._issuer}: {error}") from None


class StaticKeys:
    """Keys given as a JWKS document (tests, and a gateway that already holds its issuer's keys)."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = jwt.PyJWKSet.from_dict(dict(jwks))

    def key_for(self, token: str) -> Any:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            return next(key.key for key in self._keys.keys if key.key_id == kid)
        except (jwt.DecodeError, StopIteration):
            raise Unauthorized("no key for the token's kid") from None


def verify(
    header_value: str | None,
    settings: JwtSettings,
    keys: VerificationKeys,
    scopes: Sequence[str] = (),
) -> dict[str, Any]:
    """The token's claims, checked as API Gateway's JWT authorizer checks them; ``Unauthorized`` otherwise."""
    if not header_value:
        raise Unauthorized("no token")
    # API Gateway accepts the token with or without the "Bearer " prefix.
    token = header_value.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    try:
        if jwt.get_unverified_header(token).get("alg") not in ALGORITHMS:
            raise Unauthorized("unsupported algorithm")
        claims: dict[str, Any] = jwt.decode(
            token,
            keys.key_for(token),
            algorithms=list(ALGORITHMS),
            issuer=settings.issuer,
            # API Gateway takes the audience from aud, or from client_id (Cognito access tokens): checked below.
            options={"require": ["exp"], "verify_aud": False},
        )
    except jwt.PyJWTError as error:
        raise Unauthorized(f"invalid token: {error}") from None
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


def local_issuer(config: LocalConfig) -> LocalIssuer:
    """The issuer the local stack serves, for the template's first JWT authorizer's issuer and audience."""
    settings = default_settings(config)
    return LocalIssuer(settings.issuer, settings.audiences[0], SigningKey.load_or_create(config.jwt_key_file))


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not args[0]:
        sys.exit("usage: python -m local.jwt_tokens <externalCustomerId>   (make token CUSTOMER=<id>)")
    print(local_issuer(LocalConfig.from_env()).issue(args[0]))


if __name__ == "__main__":
    main()
