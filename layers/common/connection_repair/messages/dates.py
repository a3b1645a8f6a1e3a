"""A moment as the customer reads it: in their time zone, written the way their language writes dates."""

from __future__ import annotations

from datetime import datetime, tzinfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton, format_time


def babel_locale(tag: str | None, language: str) -> Locale:
    """The customer's own tag when Babel knows it (es-MX writes times as 9:05 a.m.), else the message's language."""
    for candidate in (tag, language):
        if candidate:
            try:
                return Locale.parse(candidate, sep="-")
            except (UnknownLocaleError, ValueError):
                continue
    return Locale("en")


def moment(when: datetime, zone: tzinfo, locale: Locale) -> str:
    """``Dec 3, 2026, 9:05 AM`` / ``3 dic 2026, 9:05``: the date, then the time to the minute, in ``zone``."""
    date = format_skeleton("yMMMd", when, tzinfo=zone, locale=locale)
    time = format_time(when, "short", tzinfo=zone, locale=locale)
    return str(locale.datetime_formats["medium"]).format(time, date)
