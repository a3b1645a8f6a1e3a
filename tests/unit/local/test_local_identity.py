"""The local OIDC issuer and the gateway's JWT checks, as API Gateway's JWT authorizer makes them.

Tokens are RS256, signed with the issuer's key; the gateway finds the key as API Gateway does: the issuer's discovery
document, its JWKS, the token's ``kid``. Everything else is refused: another key, another issuer or audience,
expired, not yet valid, HS256 (with the public key as its secret), ``none``, no ``kid``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from local.jwt_tokens import (
    DiscoveredKeys,
    JwtSettings,
    LocalIssuer,
    SigningKey,
    StaticKeys,
    Unauthorized,
    verify,
)
from local.web import WebServer

KEY = SigningKey.generate()
ISSUER = LocalIssuer("https://issuer.test", "app", KEY)
SETTINGS = JwtSettings(issuer="https://issuer.test", audiences=("app", "other-app"))
KEYS = StaticKeys(ISSUER.jwks())


def _unsigned(header: dict[str, object], claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return jwt.utils.base64url_encode(json.dumps(value).encode()).decode()

    return f"{part(header)}.{part(claims)}."


def _claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    return {"sub": "c", "iss": ISSUER.url, "aud": "app", "iat": now, "exp": now + 60} | changes


def test_a_valid_token_gives_its_claims_with_or_without_bearer() -> None:
    token = ISSUER.issue("customer-1")
    assert verify(f"Bearer {token}", SETTINGS, KEYS)["sub"] == "customer-1"
    assert verify(token, SETTINGS, KEYS)["aud"] == "app"
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": KEY.kid, "typ": "JWT"}


def test_a_cognito_access_token_names_its_audience_in_client_id() -> None:
    token = jwt.encode(
        {k: v for k, v in _claims(client_id="other-app").items() if k != "aud"},
        KEY.private_key,
        algorithm="RS256",
        headers={"kid": KEY.kid},
    )
    assert verify(token, SETTINGS, KEYS)["client_id"] == "other-app"


ANOTHER_KEY = SigningKey.generate()
PUBLIC_PEM = KEY.private_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def _hmac_with_public_key() -> str:
    # The classic confusion: HS256 keyed with the RSA public key, which anyone can fetch from the JWKS.
    signing_input = _unsigned({"alg": "HS256", "kid": KEY.kid}, _claims())[:-1]
    signature = hmac.new(PUBLIC_PEM, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


@pytest.mark.parametrize(
    "token",
    [
        lambda: None,
        lambda: "not.a.token",
        lambda: ISSUER.issue("c")[:-4] + "AAAA",
        lambda: LocalIssuer(ISSUER.url, "app", ANOTHER_KEY).issue("c"),
        # Another key presenting this key's kid.
        lambda: jwt.encode(_claims(), ANOTHER_KEY.private_key, algorithm="RS256", headers={"kid": KEY.kid}),
        lambda: LocalIssuer("https://someone-else.test", "app", KEY).issue("c"),
        lambda: LocalIssuer(ISSUER.url, "third-app", KEY).issue("c"),
        lambda: ISSUER.issue("c", lifetime_seconds=-1),
        lambda: ISSUER.issue("c", extra={"nbf": int(time.time()) + 600}),
        lambda: jwt.encode(
            {k: v for k, v in _claims().items() if k != "exp"},
            KEY.private_key,
            algorithm="RS256",
            headers={"kid": KEY.kid},
        ),
        _hmac_with_public_key,
        lambda: _unsigned({"alg": "none", "kid": KEY.kid}, _claims()),
        lambda: jwt.encode(_claims(), KEY.private_key, algorithm="RS256"),
    ],
    ids=[
        "missing",
        "malformed",
        "bad-signature",
        "unknown-key",
        "another-key-same-kid",
        "wrong-issuer",
        "wrong-audience",
        "expired",
        "nbf-in-the-future",
        "no-exp",
        "hs256-with-the-public-key",
        "alg-none",
        "no-kid",
    ],
)
def test_api_gateway_refuses_bad_tokens(token: Callable[[], str | None]) -> None:
    with pytest.raises(Unauthorized):
        verify(token(), SETTINGS, KEYS)


def test_scopes_are_checked_when_the_route_has_them() -> None:
    token = ISSUER.issue("c", extra={"scope": "read write"})
    assert verify(token, SETTINGS, KEYS, ["write"])
    with pytest.raises(Unauthorized):
        verify(token, SETTINGS, KEYS, ["admin"])


def test_the_key_is_made_once_and_kept_for_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.pem"
    first = SigningKey.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert SigningKey.load_or_create(path).kid == first.kid
    assert list(path.parent.iterdir()) == [path]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[WebServer, LocalIssuer]]:
    server = WebServer(ISSUER, 0)  # the issuer's URL is set once the port is known
    issuer = LocalIssuer(f"http://127.0.0.1:{server.port}", "app", KEY)
    server.issuer = issuer
    server.start()
    try:
        yield server, issuer
    finally:
        server.stop()


def test_the_gateway_finds_the_key_through_the_issuers_discovery_document(
    served: tuple[WebServer, LocalIssuer],
) -> None:
    _, issuer = served
    discovery = httpx.get(issuer.url + "/.well-known/openid-configuration").json()
    assert (discovery["issuer"], discovery["jwks_uri"]) == (issuer.url, issuer.url + "/.well-known/jwks.json")
    settings = JwtSettings(issuer=issuer.url, audiences=("app",))
    keys = DiscoveredKeys(issuer.url)
    assert verify(issuer.issue("customer-1"), settings, keys)["sub"] == "customer-1"
    with pytest.raises(Unauthorized):
        verify(LocalIssuer(issuer.url, "app", ANOTHER_KEY).issue("c"), settings, keys)


def test_an_issuer_that_cannot_be_reached_refuses_every_token() -> None:
    with pytest.raises(Unauthorized):
        verify(ISSUER.issue("c"), SETTINGS, DiscoveredKeys("http://127.0.0.1:9", timeout=1))


def test_the_local_sign_in_gives_a_token_for_the_customer(served: tuple[WebServer, LocalIssuer]) -> None:
    _, issuer = served
    answer = httpx.post(issuer.url + "/token", json={"customer": "customer-123"})
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert (body["tokenType"], body["expiresIn"]) == ("Bearer", 3600)
    settings = JwtSettings(issuer=issuer.url, audiences=("app",))
    assert verify(body["accessToken"], settings, DiscoveredKeys(issuer.url))["sub"] == "customer-123"


@pytest.mark.parametrize("body", [b"", b"[]", b'{"customer": ""}', b'{"customer": "two words"}', b'{"customer": 7}'])
def test_the_local_sign_in_refuses_what_is_not_a_customer_id(
    served: tuple[WebServer, LocalIssuer], body: bytes
) -> None:
    _, issuer = served
    answer = httpx.post(issuer.url + "/token", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400
    assert "customer" in answer.json()["message"]
    assert httpx.get(issuer.url + "/token").status_code == 405
