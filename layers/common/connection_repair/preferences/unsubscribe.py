"""One-click unsubscribe (RFC 8058): a link signed for one customer, so that it works without signing in, cannot be
forged, and cannot stop anyone else's messages. The signature is an HMAC-SHA256 of the customer's id under the
stack's unsubscribe secret; during a rotation any configured secret verifies."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime

from connection_repair.preferences.model import StoredPreferences
from connection_repair.preferences.ports import PreferencesStore

# What the signature is for: a secret's signature for anything else can never pass as this.
PURPOSE = b"connection-repair unsubscribe\x00"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _signature(secret: str, customer: str) -> bytes:
    return hmac.new(secret.encode(), PURPOSE + customer.encode(), hashlib.sha256).digest()


def unsubscribe_token(secret: str, customer: str) -> str:
    return f"{_b64(customer.encode())}.{_b64(_signature(secret, customer))}"


def customer_of_token(secrets: Sequence[str], token: str) -> str | None:
    """The customer ``token`` was signed for by one of ``secrets``; None for anything else."""
    encoded, _, signature = token.partition(".")
    try:
        customer = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    signed = any(hmac.compare_digest(given, _signature(secret, customer)) for secret in secrets if secret)
    return customer if customer and signed else None


def opt_out(store: PreferencesStore, customer: str, *, now: datetime) -> None:
    """Turn every message to ``customer`` off, keeping the rest of their preferences (and creating them if none)."""
    stored = store.get_preferences(customer) or StoredPreferences(external_customer_id=customer, updated_at=now)
    store.put_preferences(stored.model_copy(update={"opted_out": True, "updated_at": now}))
