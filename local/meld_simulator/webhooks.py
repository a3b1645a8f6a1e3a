"""Webhook delivery the way Meld does it: signed, success is HTTP 200 only, failures retried in the background."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from connection_repair.ingestion.signature import sign
from local.meld_simulator.config import SimulatorConfig
from local.meld_simulator.faults import WEBHOOKS, FaultPlan

logger = logging.getLogger(__name__)


def iso_timestamp(moment: datetime) -> str:
    """Meld's timestamp format: ISO-8601 UTC, microseconds, ``Z`` (e.g. 2021-12-09T21:58:29.329186Z)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    event_id: str
    event_type: str
    connection_id: str | None
    attempt: int
    retry_count: int
    status: int | None
    error: str | None
    at: datetime
    dropped: bool = False  # lost on purpose (a ``drop`` fault): never attempted

    def to_json(self) -> dict[str, Any]:
        return {
            "eventId": self.event_id,
            "eventType": self.event_type,
            "connectionId": self.connection_id,
            "attempt": self.attempt,
            "retryCount": self.retry_count,
            "status": self.status,
            "error": self.error,
            "at": iso_timestamp(self.at),
            "dropped": self.dropped,
        }


class WebhookDispatcher:
    """Sends each event on its own thread, so events are independent and may arrive out of order, as with Meld."""

    def __init__(self, config: SimulatorConfig, faults: FaultPlan | None = None) -> None:
        self._config = config
        self._faults = faults or FaultPlan()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # Bumped by reset(): retries of events sent before a reset must not leak into the next test.
        self._generation = 0
        self._events: list[dict[str, Any]] = []
        self._attempts: list[DeliveryAttempt] = []
        self._threads: set[threading.Thread] = set()

    def send(self, event_type: str, payload: dict[str, Any], *, stamp: datetime | None = None) -> dict[str, Any]:
        """Build the envelope (stamped now, or at ``stamp``) and start delivering it; returns the envelope."""
        envelope: dict[str, Any] = {
            "eventType": event_type,
            "eventId": str(uuid.uuid4()),
            "timestamp": iso_timestamp(stamp or self._config.clock()),
            "accountId": self._config.account_id,
            "profileId": self._config.profile_id,
            "version": self._config.webhook_version,
            "payload": payload,
        }
        raw_body = json.dumps(envelope, separators=(",", ":")).encode("utf-8")
        delay = self._config.delivery_delays.get(event_type, 0.0)
        if self._faults.take(WEBHOOKS) is not None:
            lost = DeliveryAttempt(
                event_id=envelope["eventId"],
                event_type=event_type,
                connection_id=payload.get("connectionId"),
                attempt=0,
                retry_count=0,
                status=None,
                error="DROPPED",
                at=self._config.clock(),
                dropped=True,
            )
            with self._lock:
                self._events.append(envelope)
                self._attempts.append(lost)
            logger.info("webhook %s (%s) dropped, as a fault asked", envelope["eventId"], event_type)
            return envelope
        with self._lock:
            self._events.append(envelope)
            generation = self._generation
            threads = [
                threading.Thread(
                    target=self._deliver,
                    args=(envelope, raw_body, generation, delay),
                    name=f"meld-webhook-{envelope['eventId'][:8]}-{copy}",
                    daemon=True,
                )
                for copy in range(1 + self._config.duplicate_deliveries)
            ]
            self._threads.update(threads)
        for thread in threads:
            thread.start()
        return envelope

    def attempts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [attempt.to_json() for attempt in self._attempts]

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    def pending(self) -> int:
        """Events still being delivered or waiting for a retry."""
        with self._lock:
            return len(self._threads)

    def clear_attempts(self) -> None:
        with self._lock:
            self._attempts.clear()

    def reset(self) -> None:
        with self._lock:
            self._generation += 1
            self._events.clear()
            self._attempts.clear()

    def close(self, timeout: float = 5.0) -> None:
        """Stop retrying and wait (bounded) for in-flight attempts."""
        self._stop.set()
        with self._lock:
            threads = list(self._threads)
        # One deadline for all: an attempt in flight may hang up to the webhook timeout, so do not wait per thread.
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _current(self, generation: int) -> bool:
        with self._lock:
            return generation == self._generation and not self._stop.is_set()

    def _deliver(self, envelope: dict[str, Any], raw_body: bytes, generation: int, delay: float) -> None:
        try:
            reason: str | None = None
            if delay and self._stop.wait(delay):
                return
            for attempt in range(1, self._config.max_attempts + 1):
                if attempt > 1 and self._stop.wait(self._config.retry_delays[attempt - 2]):
                    return
                if not self._current(generation):
                    return
                status, error = self._post(raw_body, retry_count=attempt - 1, retry_reason=reason)
                record = DeliveryAttempt(
                    event_id=envelope["eventId"],
                    event_type=envelope["eventType"],
                    connection_id=envelope["payload"].get("connectionId"),
                    attempt=attempt,
                    retry_count=attempt - 1,
                    status=status,
                    error=error,
                    at=self._config.clock(),
                )
                with self._lock:
                    if generation == self._generation:
                        self._attempts.append(record)
                if status == 200:
                    return
                reason = error
            logger.warning("webhook %s gave up after %d attempts", envelope["eventId"], self._config.max_attempts)
        except Exception:
            logger.exception("webhook %s: delivery thread failed", envelope["eventId"])
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _post(self, raw_body: bytes, *, retry_count: int, retry_reason: str | None) -> tuple[int | None, str | None]:
        """One attempt: (HTTP status or None, failure reason or None on success)."""
        config = self._config
        # Re-signed each attempt: the timestamp is the time of sending, so a retry is not stale.
        timestamp = iso_timestamp(config.clock())
        headers = {
            "Content-Type": "application/json",
            "Meld-Signature": sign(config.webhook_secret, timestamp, config.signing_url, raw_body),
            "Meld-Signature-Timestamp": timestamp,
        }
        if retry_count:
            headers["Meld-Retry-Count"] = str(retry_count)
            headers["Meld-Retry-Reason"] = retry_reason or "UNKNOWN"
        try:
            # trust_env=False: a developer's HTTP(S)_PROXY must not swallow calls to a local receiver.
            with httpx.Client(timeout=config.webhook_timeout_seconds, trust_env=False) as client:
                response = client.post(config.webhook_url, content=raw_body, headers=headers)
        except httpx.TimeoutException:
            return None, "TIMEOUT"
        except httpx.HTTPError:
            return None, "CONNECTION_ERROR"
        if response.status_code == 200:
            return 200, None
        return response.status_code, f"HTTP_{response.status_code}"
