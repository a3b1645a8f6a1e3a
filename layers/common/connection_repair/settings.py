"""Configuration, read from the environment once per cold start and validated.

Secrets are named here (Secrets Manager names) or, for local runs, given directly; either way they are SecretStr so
they never show in a repr or a log line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class EnvSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

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


class WebhookSettings(MeldApiSettings):
    table_name: str = Field(alias="TABLE_NAME")
    event_bus_name: str = Field(alias="EVENT_BUS_NAME")
    event_source: str = Field("connection-repair", alias="EVENT_SOURCE")
    # None: the URL API Gateway received the request on (see docs/decisions.md).
    webhook_url: str | None = Field(None, alias="MELD_WEBHOOK_URL")
    webhook_secret: SecretStr | None = Field(None, alias="MELD_WEBHOOK_SECRET")
    webhook_secret_previous: SecretStr | None = Field(None, alias="MELD_WEBHOOK_SECRET_PREVIOUS")
    webhook_secret_name: str | None = Field(None, alias="MELD_WEBHOOK_SECRET_NAME")
    tolerance_seconds: int = Field(300, alias="MELD_WEBHOOK_TOLERANCE_SECONDS", ge=1)
    event_ttl_days: int = Field(90, alias="EVENT_TTL_DAYS", ge=1)
    max_body_bytes: int = Field(256 * 1024, alias="MELD_WEBHOOK_MAX_BODY_BYTES", ge=1)
    # Meld's own timeout is 10 s: a lookup of an unknown connection must fit well inside it.
    meld_timeout_seconds: float = Field(3.0, alias="MELD_TIMEOUT_SECONDS", gt=0)
