"""A customer's contact details and notification preferences (set through PUT /me/notifications)."""

from __future__ import annotations

import os
import re
from datetime import datetime, time
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

import tzdata  # type: ignore[import-untyped]
from pydantic import BeforeValidator, ConfigDict, EmailStr, Field, StrictBool, WithJsonSchema, field_validator

from connection_repair.domain.base import CamelModel


class Channel(StrEnum):
    EMAIL = "EMAIL"
    SMS = "SMS"


def _text(value: object) -> object:
    # JSON gives a time as text; a number (pydantic would read 0 as midnight) is not one.
    if isinstance(value, int | float):
        raise ValueError("a time is text, e.g. 22:00")
    return value


# The bodies are validated from parsed JSON: only what the contract says, no coercion of other JSON types.
TimeOfDay = Annotated[time, BeforeValidator(_text)]


class QuietHours(CamelModel):
    """Local times between which nothing is sent; may wrap midnight (22:00-07:00)."""

    model_config = ConfigDict(extra="forbid")

    start: TimeOfDay
    end: TimeOfDay

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


E164 = Annotated[str, Field(pattern=r"^\+[1-9]\d{6,14}$", description="E.164, e.g. +14155550123")]


def _any_case(name: str) -> str:
    return "".join(f"[{char.lower()}{char.upper()}]" if char.isalpha() else re.escape(char) for char in name)


# The contract states what EmailStr accepts: an address, but not at a special-use domain (.test, .local, .invalid…),
# which email-validator refuses because no mail is delivered there. Its list, copied (importing it costs ~40 ms of
# every cold start); a test keeps the copy equal to the library's.
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")
NOT_SPECIAL_USE = "^(?!.*[@.](?:" + "|".join(_any_case(name) for name in SPECIAL_USE_DOMAINS) + ")$)"
Email = Annotated[EmailStr, WithJsonSchema({"type": "string", "format": "email", "pattern": NOT_SPECIAL_USE})]


# The IANA zones of the pinned tzdata release: what is accepted and what the contract lists are the same set, on
# every machine (the system's zone files differ).
with open(os.path.join(os.path.dirname(tzdata.__file__), "zones"), encoding="utf-8") as _zones:
    TIME_ZONES: tuple[str, ...] = tuple(sorted(_zones.read().split()))
_ZONE_SET = frozenset(TIME_ZONES)
TimeZone = Annotated[
    str,
    WithJsonSchema({"type": "string", "enum": list(TIME_ZONES), "description": "IANA time zone, e.g. Europe/Berlin"}),
]


# A BCP 47 language tag as browsers give it (navigator.language): a language, an optional script and region.
LanguageTag = Annotated[
    str,
    Field(
        pattern=r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-(?:[A-Z]{2}|\d{3}))?$",
        max_length=16,
        description="BCP 47 language tag, e.g. es or es-MX; messages use it, or its language, where the app has "
        "them, else the app's default language",
    ),
]


class NotificationPreferences(CamelModel):
    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    phone: E164 | None = None
    channels: list[Channel] = Field(default_factory=lambda: [Channel.EMAIL], max_length=4)
    timezone: TimeZone = "UTC"
    quiet_hours: QuietHours | None = None
    opted_out: StrictBool = False
    # NEW_ACCOUNTS_AVAILABLE is optional for the customer: told only when they asked to be.
    new_accounts_opt_in: StrictBool = False
    # None: the app's default language (the notifier's MessageLocale).
    locale: LanguageTag | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in _ZONE_SET:
            raise ValueError(f"unknown time zone {value!r}")
        return value

    @field_validator("channels")
    @classmethod
    def _distinct(cls, value: list[Channel]) -> list[Channel]:
        return list(dict.fromkeys(value))

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def address(self, channel: Channel) -> str | None:
        """Where this customer is reached on ``channel``, if they gave it."""
        return self.email if channel == Channel.EMAIL else self.phone


class StoredPreferences(NotificationPreferences):
    """Preferences as kept, with whose they are and when they changed."""

    model_config = ConfigDict(extra="ignore")

    external_customer_id: str
    updated_at: datetime
