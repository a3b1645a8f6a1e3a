"""Claiming a customer's send slot and each due message before a send, so that concurrent invocations send once;
and the check, once claimed, that each message is still about the connection's current episode."""

from __future__ import annotations

from datetime import datetime, timedelta

from connection_repair.domain.status_policy import Action
from connection_repair.notify.notices import still_current
from connection_repair.notify.outcome import Outcome
from connection_repair.notify.policy import Deferred, NotificationPolicy, Suppressed
from connection_repair.notify.ports import ClaimConflict, ConnectionReader, NotificationStore
from connection_repair.notify.records import EpisodeNotice, MessageClaim
from connection_repair.platform.observability import logger

# How long a send may take before its claim counts as abandoned (the process died): see docs/decisions.md §18.
CLAIM_LEASE = timedelta(minutes=15)
MAX_CLAIM_ATTEMPTS = 3
# A reminder that falls into a transient outage (action WAIT during an open episode) is tried again after this.
TRANSIENT_RETRY = timedelta(hours=1)


def claim_messages(
    store: NotificationStore,
    policy: NotificationPolicy,
    customer: str,
    notices: list[EpisodeNotice],
    *,
    previous_sent: datetime | None,
    now: datetime,
    token: str,
    outcome: Outcome,
) -> list[EpisodeNotice] | None:
    """Claim the customer's send slot and each (episode, number); None when the slot is taken meanwhile."""
    remaining = list(notices)
    for _ in range(MAX_CLAIM_ATTEMPTS):
        if not remaining:
            return []
        try:
            store.claim(
                customer,
                [MessageClaim(n.episode_id, n.next_message) for n in remaining],
                token=token,
                now=now,
                previous_sent_at=previous_sent,
                lease_until=now + CLAIM_LEASE,
            )
            return remaining
        except ClaimConflict as conflict:
            if conflict.customer_slot_taken:
                return None
            taken = set(conflict.taken)
            for notice in remaining:
                if (notice.episode_id, notice.next_message) in taken:
                    _resolve_taken(store, policy, notice, now, outcome)
            remaining = [n for n in remaining if (n.episode_id, n.next_message) not in taken]
    return None


def _resolve_taken(
    store: NotificationStore, policy: NotificationPolicy, notice: EpisodeNotice, now: datetime, outcome: Outcome
) -> None:
    """Someone claimed this message before. Abandoned mid-send: count it as (maybe) sent and move on."""
    record = store.get_claim(notice.external_customer_id, notice.episode_id, notice.next_message)
    if record is None or record.state != "CLAIMED" or record.lease_until is None or record.lease_until > now:
        return  # sent (the episode is advanced by its sender) or being sent right now
    outcome.suppressed[Suppressed.UNCERTAIN] += 1
    logger.warning(
        "Message claim abandoned mid-send: not sending it again",
        episode_id=notice.episode_id,
        message_number=notice.next_message,
    )
    claim = MessageClaim(notice.episode_id, notice.next_message)
    store.advance(notice, policy.advanced(notice, sent=True, now=now), [claim], now, "UNCERTAIN")


def recheck_claimed(
    connections: ConnectionReader,
    store: NotificationStore,
    customer: str,
    claimed: list[EpisodeNotice],
    *,
    now: datetime,
    outcome: Outcome,
) -> list[EpisodeNotice]:
    """Right before the send: which claimed messages are still about the connection's current episode."""
    current: list[EpisodeNotice] = []
    for notice in claimed:
        claim = MessageClaim(notice.episode_id, notice.next_message)
        connection = connections.get_connection(notice.connection_id)
        if connection is None or not still_current(notice, connection):
            # Repaired, deleted or replaced: nothing more for this episode (on_attention_ended records how it ended).
            outcome.suppressed[Suppressed.EPISODE_ENDED] += 1
            store.advance(notice, notice.model_copy(update={"due_at": None}), [claim], now, "CANCELLED")
        elif connection.action == Action.WAIT:
            # A transient outage inside the episode: asking for a repair now would likely fail. Later.
            store.release_claims(customer, [claim])
            store.defer(notice, now + TRANSIENT_RETRY, reason=Deferred.TRANSIENT_OUTAGE, now=now)
            outcome.deferred[Deferred.TRANSIENT_OUTAGE] += 1
        else:
            # Same episode: say what is true now (a DEGRADED episode may have become RECONNECT_REQUIRED).
            current.append(
                notice.model_copy(
                    update={
                        "status": connection.status,
                        "status_reason": connection.status_reason,
                        "institution_name": connection.institution_name or notice.institution_name,
                    }
                )
            )
    return current
