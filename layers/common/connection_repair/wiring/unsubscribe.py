"""One-click unsubscribe links: signed by the notifier, verified by the Repair API, with the stack's secret."""

from __future__ import annotations

from collections.abc import Callable

from connection_repair.adapters.secrets import secret_source
from connection_repair.platform.settings import UnsubscribeSettings
from connection_repair.preferences.unsubscribe import unsubscribe_token


def unsubscribe_link(settings: UnsubscribeSettings) -> Callable[[str], str | None] | None:
    """The customer's signed one-click link, when the stack has an unsubscribe URL and secret; else None."""
    if not settings.unsubscribe_url:
        return None
    base = settings.unsubscribe_url
    secrets = unsubscribe_secrets(settings)

    def link(customer: str) -> str | None:
        current = secrets()
        return f"{base}?token={unsubscribe_token(current[0], customer)}" if current else None

    return link


def unsubscribe_secrets(settings: UnsubscribeSettings) -> Callable[[], list[str]]:
    """The unsubscribe secret's values (current first, then the previous during a rotation)."""
    return secret_source(
        name=settings.unsubscribe_secret_name, direct=(settings.unsubscribe_secret,), keys=("current", "previous")
    )
