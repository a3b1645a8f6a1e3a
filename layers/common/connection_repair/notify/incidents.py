"""Institution incidents: detected from the breaks the notifier is told of, ended as their connections heal.

A break of a connection counts in its institution's window; an incident starts when the window holds at least the
policy's threshold of the institution's known connections, or at once when Meld names the institution as the cause.
While it lasts, every break of that institution counts in it and every repair of such a break is taken off; it ends
when fewer than its threshold remain broken (none, for an institution-level reason). Starts and ends are told on the
bus once (the incident item records what was told; a failed put is told again the next time the incident is read).
"""

from __future__ import annotations

from datetime import UTC, datetime

from connection_repair.domain.incident import (
    IncidentPolicy,
    InstitutionIncident,
    InstitutionIncidentEnded,
    InstitutionIncidentStarted,
    Trigger,
    institution_level,
)
from connection_repair.notify.outcome import Outcome
from connection_repair.notify.policy import Deferred
from connection_repair.notify.ports import IncidentPublisher, IncidentStore, NotificationStore
from connection_repair.notify.records import EpisodeNotice
from connection_repair.platform.clock import Clock
from connection_repair.platform.observability import logger


class IncidentWatch:
    def __init__(
        self,
        *,
        store: IncidentStore,
        publisher: IncidentPublisher,
        policy: IncidentPolicy,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._policy = policy
        self._clock = clock

    def on_break(
        self, institution_id: str, institution_name: str | None, attention_since: datetime, reason: str | None
    ) -> InstitutionIncident | None:
        """One of the institution's connections broke at ``attention_since``: the incident this break started, if it
        started one."""
        breaks = self._store.record_break(institution_id, attention_since, window=self._policy.window)
        current = self.current(institution_id)
        if current is not None and current.active:
            if current.covers(attention_since):
                self._store.count(current, +1)
            return None
        trigger = Trigger.INSTITUTION_REASON if institution_level(reason) else None
        connections = max(self._store.connections(institution_id), breaks)
        threshold = self._policy.threshold(connections)
        if trigger is None and breaks >= threshold:
            trigger = Trigger.SURGE
        if trigger is None:
            return None
        now = self._clock()
        incident = InstitutionIncident(
            institution_id=institution_id,
            institution_name=institution_name,
            trigger=trigger,
            since=now,
            counted_from=attention_since if trigger == Trigger.INSTITUTION_REASON else now - self._policy.window,
            hold_until=now + self._policy.hold,
            broken=1 if trigger == Trigger.INSTITUTION_REASON else breaks,
            threshold=threshold,
            connections=connections,
        )
        if self._store.start(incident):
            logger.warning(
                "Institution incident started: first messages for its connections are held",
                institution_id=institution_id,
                trigger=trigger.value,
                breaks=breaks,
                connections=connections,
            )
            self._announce(incident)
            return incident
        # Started meanwhile by another invocation, from its own read of the window (this break in it or not).
        return None

    def on_repair(self, institution_id: str, attention_since: datetime) -> InstitutionIncident | None:
        """A connection of the institution whose episode started at ``attention_since`` is not broken any more: the
        incident this ended, if it ended one."""
        current = self.current(institution_id)
        if current is None or not current.active or not current.covers(attention_since):
            return None
        counted = self._store.count(current, -1)
        if counted is None or counted.broken >= counted.end_below:
            return None
        ended_at = self._clock()
        if not self._store.end(counted, ended_at):
            return None
        ended = counted.model_copy(update={"ended_at": ended_at, "announced": False})
        logger.info("Institution incident ended", institution_id=institution_id, broken=counted.broken)
        self._announce(ended)
        return ended

    def current(self, institution_id: str) -> InstitutionIncident | None:
        """The institution's latest incident; its start or end told on the bus if it was not yet."""
        incident = self._store.incident(institution_id)
        if incident is not None and not incident.announced:
            self._announce(incident)
        return incident

    def _announce(self, incident: InstitutionIncident) -> None:
        values = incident.model_dump()
        event = InstitutionIncidentStarted(**values) if incident.active else InstitutionIncidentEnded(**values)
        self._publisher.publish([event])
        self._store.announced(incident)


def hold_for_incidents(
    watch: IncidentWatch,
    store: NotificationStore,
    due: list[EpisodeNotice],
    *,
    now: datetime,
    seen: dict[str, InstitutionIncident | None],
    outcome: Outcome,
) -> list[EpisodeNotice]:
    """The due messages that may go now. A first message of an episode that is part of its institution's ongoing
    incident is held: moved to the end of the hold, the one moment every message the incident holds is due at, from
    where ``release_held`` brings them back when the incident ends first. It is sent then only if the connection is
    still broken (the send's own check). ``seen`` keeps the incidents read by this invocation."""
    kept: list[EpisodeNotice] = []
    for notice in due:
        institution = notice.institution_id
        if notice.next_message != 0 or not institution:
            kept.append(notice)
            continue
        if institution not in seen:
            seen[institution] = watch.current(institution)
        incident = seen[institution]
        if incident is None or not incident.holds(notice.attention_since, now):
            kept.append(notice)
            continue
        store.hold(notice, incident.hold_until, now)
        outcome.deferred[Deferred.INCIDENT] += 1
    return kept


def release_held(store: NotificationStore, incident: InstitutionIncident, now: datetime) -> int:
    """The incident ended before its hold: the messages it held are due now. A release cut short (the process
    dies) leaves the rest held until the hold's end, which bounds it."""
    released = 0
    for notice in store.due_exactly(incident.hold_until):
        if notice.institution_id == incident.institution_id and notice.next_message == 0:
            store.defer(notice, now)
            released += 1
    logger.info("Held messages released", institution_id=incident.institution_id, released=released)
    return released
