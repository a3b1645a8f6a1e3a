"""Simulator settings; the environment names are the ones the real system uses for Meld."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

type Clock = Callable[[], datetime]
"""Returns the simulator's current time (timezone-aware UTC). Tests inject a fake one."""

DEFAULT_PORT = 3001
DEFAULT_API_KEY = "local-meld-api-key"
DEFAULT_WEBHOOK_SECRET = "local-webhook-secret"
DEFAULT_WEBHOOK_URL = "http://127.0.0.1:3000/webhooks/meld"
# Meld retries after ~1 min, doubling to hourly for 3 days; locally that would stall every run, so seconds instead.
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    api_key: str = DEFAULT_API_KEY
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    # Where webhooks are POSTed, and the URL that is signed (Meld signs the URL it delivers to) ...
    webhook_url: str = DEFAULT_WEBHOOK_URL
    # ... unless the receiver is known by another public URL (a tunnel in front of the local API): then that one.
    signed_url: str | None = None
    # 0 picks a free port; read the real one from MeldSimulator.base_url.
    port: int = DEFAULT_PORT
    token_lifetime: timedelta = timedelta(hours=3)
    # Meld expires a connection left IN_PROGRESS for 4 hours.
    in_progress_lifetime: timedelta = timedelta(hours=4)
    # Delay before retry 1, 2, ...; the number of attempts is len(retry_delays) + 1.
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    # Meld counts a delivery as failed when the receiver takes longer than 10 s.
    webhook_timeout_seconds: float = 10.0
    # The "timeout" fault sleeps this long, longer than a client's timeout should be.
    fault_timeout_seconds: float = 12.0
    # Envelope fields Meld fills from the API account and webhook profile.
    account_id: str = "SimAccount1kDq8nRkYtQ7bWx"
    profile_id: str = "SimProfile1mZ3vHc9pLs2TyE"
    webhook_version: str = "2023-12-19"
    clock: Clock = field(default=utc_now)
    # Meld sends a completion and the status change "in tandem"; which of the two is stamped first varies.
    completed_stamped: str = "before"  # or "after" the status change
    # Extra seconds before an event's first delivery attempt, by event type: a late or reordered delivery.
    delivery_delays: Mapping[str, float] = field(default_factory=dict)
    # Each event is also delivered this many more times, concurrently (Meld delivers at least once).
    duplicate_deliveries: int = 0
    # Origins whose pages may frame or open the widget and hear its events (none: the widget cannot be framed).
    widget_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.completed_stamped not in ("before", "after"):
            raise ValueError(f"completed_stamped must be 'before' or 'after', not {self.completed_stamped!r}")

    @property
    def signing_url(self) -> str:
        return self.signed_url or self.webhook_url

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays) + 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SimulatorConfig:
        """Read the config from ``environ`` (default ``os.environ``); unset names keep their defaults."""
        env = os.environ if environ is None else environ
        retry = env.get("LOCAL_MELD_RETRY_DELAYS")
        return cls(
            api_key=env.get("MELD_API_KEY") or DEFAULT_API_KEY,
            webhook_secret=env.get("MELD_WEBHOOK_SECRET") or DEFAULT_WEBHOOK_SECRET,
            webhook_url=env.get("MELD_WEBHOOK_URL") or DEFAULT_WEBHOOK_URL,
            signed_url=env.get("LOCAL_MELD_SIGNED_URL") or None,
            port=int(env.get("LOCAL_MELD_PORT") or DEFAULT_PORT),
            token_lifetime=timedelta(seconds=float(env.get("LOCAL_MELD_TOKEN_LIFETIME_SECONDS") or 3 * 3600)),
            retry_delays=_parse_delays(retry) if retry else DEFAULT_RETRY_DELAYS,
            fault_timeout_seconds=float(env.get("LOCAL_MELD_FAULT_TIMEOUT_SECONDS") or 12.0),
            completed_stamped=env.get("LOCAL_MELD_COMPLETED_STAMPED") or "before",
            delivery_delays=_parse_named_delays(env.get("LOCAL_MELD_DELIVERY_DELAYS") or ""),
            duplicate_deliveries=int(env.get("LOCAL_MELD_DUPLICATE_DELIVERIES") or 0),
            widget_origins=tuple(
                o.strip() for o in (env.get("LOCAL_MELD_WIDGET_ORIGINS") or "").split(",") if o.strip()
            ),
        )


def _parse_delays(text: str) -> tuple[float, ...]:
    """``"1,2,4"`` → (1.0, 2.0, 4.0); an empty list means no retries."""
    return tuple(float(part) for part in text.split(",") if part.strip())


def _parse_list(text: str) -> tuple[str, ...]:
    """``"http://a, http://b"`` → ("http://a", "http://b"); comma-separated, blanks dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _parse_named_delays(text: str) -> dict[str, float]:
    """``"BANK_LINKING_CONNECTION_STATUS_CHANGE=0.5"`` → {event type: seconds}; comma-separated."""
    delays: dict[str, float] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        name, _, seconds = part.partition("=")
        delays[name.strip()] = float(seconds)
    return delays
