"""Meld's client and the ports it serves, built from the settings every Meld-calling function shares."""

from __future__ import annotations

from collections.abc import Callable

from connection_repair.adapters.meld.client import MeldClient
from connection_repair.adapters.meld.gateway import MeldConnectGateway, MeldConnectionDirectory
from connection_repair.adapters.secrets import secret_source
from connection_repair.platform.settings import MeldApiSettings, MissingConfiguration


def meld_api_key(settings: MeldApiSettings) -> Callable[[], str]:
    values = secret_source(name=settings.meld_api_key_secret_name, direct=(settings.meld_api_key,), keys=("apiKey",))

    def current() -> str:
        keys = values()
        if not keys:
            raise MissingConfiguration("no Meld API key: set MELD_API_KEY or MELD_API_KEY_SECRET_NAME")
        return keys[0]

    return current


def meld_client(settings: MeldApiSettings, *, deadline_seconds: float, max_attempts: int) -> MeldClient:
    return MeldClient(
        settings.meld_api_base_url,
        meld_api_key(settings),
        meld_version=settings.meld_version,
        timeout=settings.meld_timeout_seconds,
        deadline_seconds=deadline_seconds,
        max_attempts=max_attempts,
    )


def meld_directory(settings: MeldApiSettings) -> MeldConnectionDirectory:
    # Inside Meld's 10 s: at most two quick tries; a failure answers 5xx and Meld retries later.
    return MeldConnectionDirectory(meld_client(settings, deadline_seconds=4.0, max_attempts=2))


def meld_gateway(settings: MeldApiSettings, *, deadline_seconds: float, max_attempts: int) -> MeldConnectGateway:
    return MeldConnectGateway(meld_client(settings, deadline_seconds=deadline_seconds, max_attempts=max_attempts))
