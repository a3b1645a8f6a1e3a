from __future__ import annotations

from datetime import time

import pytest
from pydantic import ValidationError

from connection_repair.preferences.model import Channel, NotificationPreferences, QuietHours


def test_valid_preferences_are_read_from_camel_case():
    preferences = NotificationPreferences.model_validate(
        {
            "email": "ana@example.com",
            "phone": "+14155550123",
            "channels": ["SMS", "EMAIL", "SMS"],
            "timezone": "Europe/Berlin",
            "quietHours": {"start": "22:00", "end": "07:00"},
            "newAccountsOptIn": True,
        }
    )
    assert preferences.channels == [Channel.SMS, Channel.EMAIL]
    assert preferences.zone().key == "Europe/Berlin"
    assert preferences.new_accounts_opt_in


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("phone", "4155550123"),
        ("timezone", "Mars/Olympus_Mons"),
        ("channels", ["PIGEON"]),
        ("unknownField", 1),
    ],
)
def test_invalid_values_are_refused_naming_the_field(field, value):
    with pytest.raises(ValidationError) as caught:
        NotificationPreferences.model_validate({field: value})
    assert field in str(caught.value)


@pytest.mark.parametrize(
    ("start", "end", "moment", "quiet"),
    [
        (time(22), time(7), time(23), True),
        (time(22), time(7), time(6, 59), True),
        (time(22), time(7), time(7), False),
        (time(22), time(7), time(12), False),
        (time(12), time(14), time(13), True),
        (time(12), time(14), time(14), False),
    ],
)
def test_quiet_hours_may_wrap_midnight(start, end, moment, quiet):
    assert QuietHours(start=start, end=end).contains(moment) is quiet
