"""Writes events/notifier_*.json: the notifier's events as Lambda receives them (tests and `sam local invoke -e`).

Bus events come as the SQS batch the notifier's queue delivers, each body an EventBridge event; the sweep as the
schedule's `Scheduled Event`.

Run `PYTHONPATH=layers/common:. .venv/bin/python -m local.make_notifier_events` after changing a scenario. The
connection is the one of the webhook events (local.make_events.CONNECTION), broken at 11:30 and repaired at 11:45.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from connection_repair.adapters.eventbridge import event_detail
from connection_repair.domain.bus_events import AnyDownstreamEvent, ConnectionAttentionEnded, ConnectionNeedsAttention
from connection_repair.domain.status_policy import Action
from local.eventbridge import sqs_record
from local.make_events import CONNECTION

EVENTS = Path(__file__).resolve().parent.parent / "events"
ACCOUNT = "123456789012"
REGION = "us-east-1"
EPISODE_ID = "episode-0002"
BROKEN_AT = datetime.fromisoformat("2026-11-25T11:30:00.329186+00:00")
REPAIRED_AT = datetime.fromisoformat("2026-11-25T11:45:00+00:00")
SWEEP_AT = "2026-11-26T11:35:00Z"
CONNECTION_ID = str(CONNECTION["connectionId"])
CUSTOMER_ID = str(CONNECTION["externalCustomerId"])
INSTITUTION_ID = str(CONNECTION["institutionId"])


def bus_event(event: AnyDownstreamEvent, *, source: str = "connection-repair") -> dict[str, Any]:
    """The event as EventBridge hands it to a rule target."""
    detail = json.loads(event_detail(event))
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{event.detail_type}/{detail['episodeId']}")),
        "detail-type": event.detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": event.event_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [],
        "detail": detail,
    }


def queued(*events: dict[str, Any], queue: str = "notifier-queue") -> dict[str, Any]:
    """EventBridge events as the notifier's queue hands them to Lambda: one SQS batch, a record each."""
    return {"Records": [_sqs_record(event, queue) for event in events]}


def _sqs_record(event: dict[str, Any], queue: str) -> dict[str, Any]:
    sent = str(int(datetime.fromisoformat(event["time"]).timestamp() * 1000))
    return sqs_record(
        message_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"message/{event['id']}")),
        receipt_handle=f"receipt-{event['id']}",
        body=json.dumps(event),
        attributes={
            "ApproximateReceiveCount": "1",
            "SentTimestamp": sent,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": sent,
        },
        queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
    )


def scheduled_event(time: str = SWEEP_AT, rule: str = "notifier-sweep") -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sweep/{time}")),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time,
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}"],
        "detail": {},
    }


def needs_attention(
    *,
    connection_id: str = CONNECTION_ID,
    external_customer_id: str | None = CUSTOMER_ID,
    institution_name: str = "Chase",
    episode_id: str = EPISODE_ID,
    at: datetime = BROKEN_AT,
    status: str = "RECONNECT_REQUIRED",
    reason: str | None = "LOGIN_REQUIRED",
    action: Action = Action.REPAIR,
) -> ConnectionNeedsAttention:
    return ConnectionNeedsAttention(
        event_id="evt-status-0002",  # events/webhook_status_change_reconnect_required.json, which caused it
        connection_id=connection_id,
        external_customer_id=external_customer_id,
        institution_id=INSTITUTION_ID,
        institution_name=institution_name,
        status=status,
        status_reason=reason,
        action=action,
        episode_id=episode_id,
        event_time=at,
        attention_since=at,
    )


def repaired(attention: ConnectionNeedsAttention, *, at: datetime = REPAIRED_AT) -> ConnectionAttentionEnded:
    return ConnectionAttentionEnded(
        event_id="evt-status-0003",  # events/webhook_status_change_active.json, which caused it
        connection_id=attention.connection_id,
        external_customer_id=attention.external_customer_id,
        institution_id=attention.institution_id,
        institution_name=attention.institution_name,
        status="ACTIVE",
        status_reason=None,
        action=Action.NONE,
        episode_id=attention.episode_id,
        event_time=at,
        attention_since=attention.attention_since,
        resolution="REPAIRED",
    )


def scenarios() -> dict[str, dict[str, Any]]:
    broken = needs_attention()
    return {
        "notifier_connection_needs_attention": queued(bus_event(broken)),
        "notifier_connection_attention_ended": queued(bus_event(repaired(broken))),
        "notifier_reminder_sweep": scheduled_event(),
    }


def main() -> None:
    for name, event in scenarios().items():
        (EVENTS / f"{name}.json").write_text(json.dumps(event, indent=2) + "\n")
        print(f"wrote events/{name}.json")


if __name__ == "__main__":
    main()
