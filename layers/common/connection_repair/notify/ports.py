"""What the notifier needs from the outside: the connection as it is now, its own state store, the channels, the
send counter, and what incident detection keeps and tells."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from connection_repair.domain.connection import Connection
from connection_repair.domain.incident import InstitutionIncident, InstitutionIncidentEnded, InstitutionIncidentStarted
from connection_repair.notify.records import ClaimRecord, CustomerNotifyState, EpisodeNotice, Message, MessageClaim
from connection_repair.preferences.model import Channel


class ConnectionReader(Protocol):
    """The connection as it is now: a message is checked against it right before it goes out."""

    def get_connection(self, connection_id: str) -> Connection | None: ...


class SendRefused(Exception):
    """The provider answered that it did not take the message: nothing went out.

    ``permanent``: it never will for this address (rejected, invalid, suppressed); otherwise it may later (throttled,
    quota, the deployment's own configuration). ``throttled``: the account's send rate or quota, not the message.
    """

    def __init__(self, reason: str, *, permanent: bool, throttled: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.throttled = throttled


class NotificationChannel(Protocol):
    """One way to reach a customer (email, SMS; push or the app's own webhook would be one more adapter)."""

    def send(self, address: str, message: Message, *, customer: str) -> str:
        """Hand the message to the provider, once (no retries: a retry after a lost answer sends it twice); the
        provider's id of the message, for support to follow it (SES's, SNS's MessageId). ``customer`` goes with it
        where the provider reports back on it (a bounce, a complaint), to find whose address it was.

        Raises ``SendRefused`` when the provider answered that it did not take it; any other error means the outcome
        is unknown (a timeout, a dropped connection), and the message counts as maybe sent.
        """
        ...


class SendCounter(Protocol):
    """Sends per channel per second, counted across every invocation of the notifier."""

    def take(self, channel: Channel, second: datetime, limit: int) -> bool:
        """Count one send on ``channel`` in ``second`` unless ``limit`` were counted there already (then False)."""
        ...


class ClaimConflict(Exception):
    """The claim transaction was refused: the customer's send slot is taken, or some messages are claimed already."""

    def __init__(self, *, customer_slot_taken: bool, taken: Sequence[tuple[str, int]] = ()) -> None:
        super().__init__("customer slot taken" if customer_slot_taken else f"messages claimed already: {list(taken)}")
        self.customer_slot_taken = customer_slot_taken
        self.taken = list(taken)


class NotificationStore(Protocol):
    def register_episode(self, notice: EpisodeNotice) -> bool:
        """Create the episode's notification state; False when it exists (a duplicate event) or was closed."""
        ...

    def close_episode(
        self, external_customer_id: str, episode_id: str, *, resolution: str, now: datetime, connection_id: str
    ) -> int | None:
        """Close the episode (nothing more is due); the reminders it had sent, or None if it was closed already."""
        ...

    def customer_episodes(self, external_customer_id: str) -> list[EpisodeNotice]:
        """The customer's open episodes (consistent read)."""
        ...

    def due_episodes(self, now: datetime, *, limit: int) -> list[EpisodeNotice]:
        """Episodes with a message due at or before ``now``, oldest first, read from the sparse index; nothing else
        is read. Due messages are never left behind, however old (a notifier outage): every day that may hold one is
        read until it is empty."""
        ...

    def due_exactly(self, moment: datetime) -> list[EpisodeNotice]:
        """The episodes whose message is due at exactly ``moment`` (the messages an incident held until then)."""
        ...

    def get_customer_state(self, external_customer_id: str) -> CustomerNotifyState: ...

    def mark_unusable(
        self, external_customer_id: str, channel: Channel, address: str, *, reason: str, now: datetime
    ) -> None:
        """Never send to ``address`` on ``channel`` again (a provider refused it for good); a new one is usable."""
        ...

    def back_off(self, notice: EpisodeNotice, due_at: datetime) -> None:
        """One more failed delivery of the due message: count it and move the message to ``due_at``."""
        ...

    def defer(
        self, notice: EpisodeNotice, due_at: datetime, *, reason: str | None = None, now: datetime | None = None
    ) -> None:
        """Move the due message to ``due_at`` (if the episode is still at that message); with a ``reason``, noted on
        the episode at ``now`` for support (`make inspect`)."""
        ...

    def hold(self, notice: EpisodeNotice, until: datetime, now: datetime) -> None:
        """Defer the first message through its institution's incident, marked as held (it then says so)."""
        ...

    def claim(
        self,
        external_customer_id: str,
        claims: Sequence[MessageClaim],
        *,
        token: str,
        now: datetime,
        previous_sent_at: datetime | None,
        lease_until: datetime,
    ) -> None:
        """Atomically take the customer's send slot (its last send must be ``previous_sent_at``) and every message.

        Raises ``ClaimConflict`` and then has written nothing.
        """
        ...

    def release_claims(self, external_customer_id: str, claims: Sequence[MessageClaim]) -> None: ...

    def release_slot(self, external_customer_id: str, token: str, previous_sent_at: datetime | None) -> None: ...

    def get_claim(self, external_customer_id: str, episode_id: str, number: int) -> ClaimRecord | None: ...

    def advance(
        self,
        notice: EpisodeNotice,
        updated: EpisodeNotice,
        claims: Sequence[MessageClaim],
        now: datetime,
        state: str,
        *,
        message_ids: Mapping[str, str] | None = None,
        skipped: str | None = None,
    ) -> None:
        """Move the episode to ``updated`` (if still at ``notice.next_message``) and mark ``claims`` as ``state``,
        with the providers' ids of what was sent (channel -> id), for support; ``skipped``: why the message it moves
        past was not sent, noted on the episode."""
        ...


class IncidentStore(Protocol):
    def record_break(self, institution_id: str, at: datetime, *, window: timedelta) -> int:
        """Count one connection of the institution breaking at ``at``; the breaks counted within ``window`` up to
        ``at``, this one included."""
        ...

    def connections(self, institution_id: str) -> int:
        """How many of the institution's connections this backend knows (0 when it has not counted them)."""
        ...

    def incident(self, institution_id: str) -> InstitutionIncident | None:
        """The institution's latest incident, ongoing or ended."""
        ...

    def incidents(self, institution_ids: Sequence[str]) -> dict[str, InstitutionIncident]:
        """The ongoing incidents among these institutions."""
        ...

    def start(self, incident: InstitutionIncident) -> bool:
        """Record ``incident`` unless one is ongoing for its institution (False: someone started it first)."""
        ...

    def count(self, incident: InstitutionIncident, change: int) -> InstitutionIncident | None:
        """Add ``change`` to the ongoing ``incident``'s broken connections; None when it is not ongoing any more."""
        ...

    def end(self, incident: InstitutionIncident, at: datetime) -> bool:
        """Mark the ongoing ``incident`` ended (False: it was ended or replaced meanwhile)."""
        ...

    def announced(self, incident: InstitutionIncident) -> None:
        """Record that the bus was told of the incident's latest change (its start, or its end)."""
        ...


class IncidentPublisher(Protocol):
    def publish(self, events: Sequence[InstitutionIncidentStarted | InstitutionIncidentEnded]) -> None:
        """Put the events on the bus; raise unless all were accepted."""
        ...
