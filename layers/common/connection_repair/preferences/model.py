"""A customer's contact details and notification preferences (set through PUT /me/notifications)."""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, EmailStr, Field, field_validator

from connection_repair.domain.base import CamelModel


class Channel(StrEnum):
    EMAIL = "EMAIL"
    SMS = "SMS"


class QuietHours(CamelModel):
    """Local times between which nothing is sent; may wrap midnight (22:00-07:00)."""

    model_config = ConfigDict(extra="forbid")

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


E164 = Annotated[str, Field(pattern=r"^\+[1-9]\d{6,14}$", description="E.164, e.g. +14155550123")]


class NotificationPreferences(CamelModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = None
    phone: E164 | None = None
    channels: list[Channel] = Field(default_factory=lambda: [Channel.EMAIL], max_length=4)
    timezone: str = Field("UTC", max_length=64, description="IANA time zone, e.g. Europe/Berlin")
    quiet_hours: QuietHours | None = None
    opted_out: bool = False
    # NEW_ACCOUNTS_AVAILABLE is optional for the customer: told only when they asked to be.
    new_accounts_opt_in: bool = False

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
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
