"""Meld's state of a connection as reconciliation read it: stored as an event beside Meld's webhooks, and read back
as the change it makes (a replay recomputes a connection from these as from its webhooks)."""

from __future__ import annotations

import json
from datetime import datetime

from pydantic.alias_generators import to_camel, to_snake

from connection_repair.domain.connection import ConnectionChange
from connection_repair.ingestion.ports import MeldConnection
from connection_repair.outbox.ports import StoredEvent
from connection_repair.reconcile.drift import DriftKind
from connection_repair.reconcile.ports import Progress

# The type of the stored event an observation becomes (a connection's timeline shows it next to Meld's webhooks).
OBSERVED = "CONNECTION_OBSERVED"


def observation(
    theirs: MeldConnection, observed_at: datetime, progress: Progress, kind: DriftKind | None
) -> tuple[StoredEvent, ConnectionChange]:
    """Meld's state of a connection read at ``observed_at``, as a stored event and the change it makes.

    The event id is the run's and the connection's: a page read again by the same run is a duplicate.
    """
    change = ConnectionChange(
        connection_id=theirs.connection_id,
        customer_id=theirs.customer_id,
        external_customer_id=theirs.external_customer_id,
        institution_id=theirs.institution_id,
        institution_name=theirs.institution_name,
        status=theirs.status,
        status_reason=theirs.status_reason,
    )
    body = {
        "source": progress.mode,
        "runId": progress.run_id,
        "drift": kind,
        "observedAt": observed_at.isoformat(),
        # What was read, as Meld names it: the change's fields (a completion flag it never sets left out).
        "connection": {
            to_camel(name): value for name, value in change.model_dump(exclude_none=True, exclude={"completed"}).items()
        },
    }
    stored = StoredEvent(
        event_id=f"{progress.mode}#{progress.run_id}#{theirs.connection_id}",
        event_type=OBSERVED,
        event_time=observed_at,
        connection_id=theirs.connection_id,
        received_at=observed_at,
        retry_count=0,
        raw_body=json.dumps(body, separators=(",", ":")),
    )
    return stored, change


def observed_change(event: StoredEvent) -> ConnectionChange | None:
    """The change an observation made, read back from its stored body; None for a body that is not one (an erased
    or hand-edited item)."""
    try:
        seen = json.loads(event.raw_body).get("connection")
    except (ValueError, AttributeError):
        return None
    if not isinstance(seen, dict) or not seen.get("connectionId"):
        return None
    return ConnectionChange.model_validate({to_snake(name): value for name, value in seen.items()})
