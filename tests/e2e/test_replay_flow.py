"""`make replay` against the running local stack: a connection as an older, buggy deployment stored it is recomputed,
the episode the bug missed is announced on the stack's bus, and its customer gets the one email it should have."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from connection_repair.domain import status_policy
from connection_repair.domain.status_policy import Action
from connection_repair.domain.transitions import apply_change
from connection_repair.ingestion.webhook import connection_change, parse_webhook
from connection_repair.outbox.ports import StoredEvent
from local.make_events import envelope
from local.outbox import sent_emails
from ops.inspect import timeline
from ops.replay import main
from ops.stack import LocalStack
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e


def stored_by_the_buggy_version(stack: RunningStack, customer: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A break Meld reported, stored by a deployment whose status policy took it for a wait (no episode, nobody
    told)."""
    connection_id = f"conn-{uuid.uuid4().hex[:8]}"
    at = datetime.now(UTC) - timedelta(hours=1)
    payload = {
        "connectionId": connection_id,
        "externalCustomerId": customer,
        "institutionName": "Chase",
        "newStatus": "DEGRADED",
        "statusReason": "INTERACTIVE_REFRESH",
    }
    body = envelope("BANK_LINKING_CONNECTION_STATUS_CHANGE", f"evt-{connection_id}", at.isoformat(), payload)
    change = connection_change(parse_webhook(json.dumps(body).encode()))
    assert change is not None
    with monkeypatch.context() as patched:
        patched.setitem(status_policy._BY_STATUS_AND_REASON, ("DEGRADED", "INTERACTIVE_REFRESH"), Action.WAIT)
        transition = apply_change(None, change, event_id=body["eventId"], event_time=at, new_episode_id="unused")
    assert (transition.connection.action, transition.downstream) == (Action.WAIT, [])
    event = StoredEvent(
        event_id=body["eventId"],
        event_type=body["eventType"],
        event_time=at,
        connection_id=connection_id,
        received_at=at,
        retry_count=0,
        raw_body=json.dumps(body),
    )
    stack.store().save_event(event, lease_until=at, connection=transition.connection)
    return connection_id


def emails_to(stack: RunningStack, address: str) -> list[str]:
    return [email.subject for email in sent_emails(stack.config.aws_url) if address in email.recipients]


def test_a_replay_announces_the_missed_episode_once_and_the_customer_is_told_once(
    stack: RunningStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    customer = f"e2e-{uuid.uuid4().hex[:8]}"
    address = f"{customer}@example.com"
    signed_in = {"Authorization": f"Bearer {stack.token(customer)}"}
    with stack.api() as api:
        body = {"email": address, "channels": ["EMAIL"]}
        assert api.put("/me/notifications", json=body, headers=signed_in).status_code == 200
    connection_id = stored_by_the_buggy_version(stack, customer, monkeypatch)
    ops = LocalStack(stack.config)

    assert main([f"CONNECTION={connection_id}", "APPLY=1"], ops) == 0
    assert f"{connection_id}: changed\n  action: WAIT -> REPAIR\n" in capsys.readouterr().out

    # The stack's notifier hears of the episode from the bus, and the customer gets its first message
    deadline = time.monotonic() + 30
    while not emails_to(stack, address):
        assert time.monotonic() < deadline, "no email after the replay\n" + stack.log_tail()
        time.sleep(0.3)
    with stack.api() as api:
        seen = api.get(f"/connections/{connection_id}", headers=signed_in).json()
    assert (seen["action"], seen["status"]) == ("REPAIR", "DEGRADED")

    # Replayed again: nothing left to change, nothing announced, no second email
    assert main([f"CONNECTION={connection_id}", "APPLY=1"], ops) == 0
    assert capsys.readouterr().out.startswith(f"{connection_id}: unchanged\n")
    time.sleep(2)
    assert len(emails_to(stack, address)) == 1
    assert any("replayed from evt-" in line for line in timeline(ops, connection_id))
