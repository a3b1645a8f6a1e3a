"""Configuration, read from the environment once per cold start and validated.

Secrets are named here (Secrets Manager names) or, for local runs, given directly; either way they are SecretStr so
they never show in a repr or a log line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class MissingConfiguration(Exception):
    """A required setting or secret is absent: a deployment problem, not a caller's."""


class EnvSettings(BaseModel):
    # defer_build: each function validates only its own settings class; the others are never built.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        source = os.environ if environ is None else environ
        # Empty variables mean "not set" (SAM passes "" for empty parameters).
        return cls.model_validate({key: value for key, value in source.items() if value != ""})


class MeldApiSettings(EnvSettings):
    meld_api_base_url: str = Field("https://api-sb.meld.io", alias="MELD_API_BASE_URL")
    meld_api_key: SecretStr | None = Field(None, alias="MELD_API_KEY")
    meld_api_key_secret_name: str | None = Field(None, alias="MELD_API_KEY_SECRET_NAME")
    meld_version: str = Field("2025-03-04", alias="MELD_VERSION")
    meld_timeout_seconds: float = Field(8.0, alias="MELD_TIMEOUT_SECONDS", gt=0)


class TableSettings(EnvSettings):
    """The single table, and how long stored events are kept."""

    table_name: str = Field(alias="TABLE_NAME")
    event_ttl_days: int = Field(90, alias="EVENT_TTL_DAYS", ge=1)


class BusSettings(EnvSettings):
    """The app's EventBridge bus, and the source our events carry on it."""

    event_bus_name: str = Field(alias="EVENT_BUS_NAME")
    event_source: str = Field("connection-repair", alias="EVENT_SOURCE")


class WebhookSettings(MeldApiSettings, TableSettings, BusSettings):
    # None: the URL API Gateway received the request on (see docs/decisions.md).
    webhook_url: str | None = Field(None, alias="MELD_WEBHOOK_URL")
    webhook_secret: SecretStr | None = Field(None, alias="MELD_WEBHOOK_SECRET")
    webhook_secret_previous: SecretStr | None = Field(None, alias="MELD_WEBHOOK_SECRET_PREVIOUS")
    webhook_secret_name: str | None = Field(None, alias="MELD_WEBHOOK_SECRET_NAME")
    tolerance_seconds: int = Field(300, alias="MELD_WEBHOOK_TOLERANCE_SECONDS", ge=1)
    max_body_bytes: int = Field(256 * 1024, alias="MELD_WEBHOOK_MAX_BODY_BYTES", ge=1)
    # Meld's own timeout is 10 s: a lookup of an unknown connection must fit well inside it.
    meld_timeout_seconds: float = Field(3.0, alias="MELD_TIMEOUT_SECONDS", gt=0)
    max_failed_repairs: int = Field(3, alias="MAX_FAILED_REPAIRS", ge=1)
    # Every verified webhook, of every type, also goes to the bus as `Meld Webhook Received`.
    forward_webhooks: bool = Field(True, alias="FORWARD_MELD_WEBHOOKS")


class ReplaySettings(TableSettings, BusSettings):
    """`make replay`: read from the webhook function's environment, the logic it recomputes with."""

    max_failed_repairs: int = Field(3, alias="MAX_FAILED_REPAIRS", ge=1)


class UnsubscribeSettings(EnvSettings):
    """One-click unsubscribe links: where they point (the public API's /unsubscribe) and the secret that signs them."""

    unsubscribe_url: str | None = Field(None, alias="UNSUBSCRIBE_URL", pattern=r"^https?://")
    unsubscribe_secret_name: str | None = Field(None, alias="UNSUBSCRIBE_SECRET_NAME")
    # Local runs: the secret itself.
    unsubscribe_secret: SecretStr | None = Field(None, alias="UNSUBSCRIBE_SECRET")


class UnsubscribePageSettings(TableSettings, UnsubscribeSettings):
    """The unsubscribe page (functions/unsubscribe): the link in every email, served without sign-in."""


class RepairApiSettings(MeldApiSettings, TableSettings):
    """The Repair API (functions/repair_api). Its Meld calls must end well inside API Gateway's 29 s."""

    # The JWT claim that carries the caller's externalCustomerId.
    customer_id_claim: str = Field("sub", alias="CUSTOMER_ID_CLAIM", min_length=1)
    meld_timeout_seconds: float = Field(5.0, alias="MELD_TIMEOUT_SECONDS", gt=0)
    meld_deadline_seconds: float = Field(12.0, alias="MELD_DEADLINE_SECONDS", gt=0, le=25)
    meld_max_attempts: int = Field(3, alias="MELD_MAX_ATTEMPTS", ge=1, le=6)


class ReplacerSettings(MeldApiSettings, TableSettings, BusSettings):
    """The connection replacer (functions/connection_replacer), invoked asynchronously by EventBridge."""


class ReconcilerSettings(MeldApiSettings, TableSettings, BusSettings):
    """The reconciler (functions/reconciler): on a schedule, or invoked for a backfill. No one waits on it."""

    meld_deadline_seconds: float = Field(30.0, alias="MELD_DEADLINE_SECONDS", gt=0, le=120)
    meld_max_attempts: int = Field(5, alias="MELD_MAX_ATTEMPTS", ge=1, le=10)
    max_failed_repairs: int = Field(3, alias="MAX_FAILED_REPAIRS", ge=1)


class OutboxSweeperSettings(TableSettings, BusSettings):
    """The outbox sweeper (functions/outbox_sweeper), on a schedule."""


class NotifierSettings(TableSettings, BusSettings, UnsubscribeSettings):
    """The notifier (functions/notifier): customer email/SMS for episodes, with reminders (docs/decisions.md §17-21)."""

    # Where a message links to: the app's reconnect screen, with {connectionId} filled in.
    app_reconnect_url: str = Field(alias="APP_RECONNECT_URL", pattern=r"^https?://.*\{connectionId\}")
    app_name: str = Field("your app", alias="NOTIFY_APP_NAME", min_length=1, max_length=40)
    # Where the customer changes or stops these messages; every message links to it.
    app_settings_url: str = Field(alias="APP_NOTIFICATION_SETTINGS_URL", pattern=r"^https?://")
    app_logo_url: str | None = Field(None, alias="APP_LOGO_URL", pattern=r"^(https://.*)?$")
    brand_color: str = Field("#1a56db", alias="APP_BRAND_COLOR", pattern=r"^#[0-9a-fA-F]{6}$")
    # The language of a customer who chose none (a shipped catalog or the deployment's own).
    default_locale: str = Field("en", alias="NOTIFY_DEFAULT_LOCALE", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,4})*$")
    # The deployment's own templates and phrases: s3://bucket/prefix/ ; empty: the project's.
    templates_bucket: str | None = Field(None, alias="NOTIFY_TEMPLATES_BUCKET")
    templates_prefix: str = Field("", alias="NOTIFY_TEMPLATES_PREFIX")
    # SES: a verified identity (address or domain) that sends the email; None disables email.
    sender_email: str | None = Field(None, alias="NOTIFY_SENDER_EMAIL")
    ses_configuration_set: str | None = Field(None, alias="NOTIFY_SES_CONFIGURATION_SET")
    # Reminders after the episode starts, in hours ("24,72": after 1 and 3 days); at most two.
    reminder_hours: tuple[float, ...] = Field((24.0, 72.0), alias="NOTIFY_REMINDER_HOURS", max_length=2)
    digest_window_minutes: float = Field(5.0, alias="NOTIFY_DIGEST_WINDOW_MINUTES", ge=0, le=60)
    min_interval_hours: float = Field(24.0, alias="NOTIFY_MIN_INTERVAL_HOURS", ge=0)
    sweep_max_items: int = Field(5000, alias="NOTIFY_SWEEP_MAX_ITEMS", ge=1)
    # Sends a second on each channel, over every invocation (the account's SES / SNS quota); 0: unpaced.
    send_rate_per_second: int = Field(14, alias="NOTIFY_SEND_RATE_PER_SECOND", ge=0)
    # Institution incidents (docs/incidents.md).
    incident_min_connections: int = Field(25, alias="INCIDENT_MIN_CONNECTIONS", ge=1)
    incident_share_percent: float = Field(20.0, alias="INCIDENT_SHARE_PERCENT", gt=0, le=100)
    incident_window_minutes: int = Field(15, alias="INCIDENT_WINDOW_MINUTES", ge=1, le=1440)
    incident_hold_hours: float = Field(6.0, alias="INCIDENT_HOLD_HOURS", ge=0, le=72)

    @field_validator("reminder_hours", mode="before")
    @classmethod
    def _hours(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            return tuple(float(part) for part in parts)
        return value

    @field_validator("reminder_hours")
    @classmethod
    def _increasing(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(hours <= 0 for hours in value) or list(value) != sorted(set(value)):
            raise ValueError("reminder hours must be positive and increasing, e.g. 24,72")
        return value
