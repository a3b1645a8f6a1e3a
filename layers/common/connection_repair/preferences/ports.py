"""Where a customer's notification preferences are kept."""

from __future__ import annotations

from typing import Protocol

from connection_repair.preferences.model import StoredPreferences


class PreferencesStore(Protocol):
    def get_preferences(self, external_customer_id: str) -> StoredPreferences | None: ...

    def put_preferences(self, preferences: StoredPreferences) -> None: ...
