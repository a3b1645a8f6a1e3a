"""One-click unsubscribe links: signed by the notifier, verified by the unsubscribe page, with the stack's secret."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import boto3
from botocore.config import Config

from connection_repair.adapters.dynamodb.preferences import DynamoDBPreferencesStore
from connection_repair.adapters.secrets import secret_source
from connection_repair.platform.settings import UnsubscribePageSettings, UnsubscribeSettings
from connection_repair.preferences.ports import PreferencesStore
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


# A person waits on the page: short timeouts, so a slow dependency fails inside API Gateway's 29 s.
PAGE_AWS_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 3})


@cache
def page_settings() -> UnsubscribePageSettings:
    return UnsubscribePageSettings.from_env()


@cache
def unsubscribe_verifier() -> Callable[[], list[str]]:
    """The secrets an unsubscribe link may be signed with (current, then previous)."""
    return unsubscribe_secrets(page_settings())


@cache
def preferences_store() -> PreferencesStore:
    return DynamoDBPreferencesStore(boto3.client("dynamodb", config=PAGE_AWS_CONFIG), page_settings().table_name)
