"""Writes docs/events/<detail-type>.json: a JSON Schema for the detail of each event this stack puts on the app's bus,
generated from the models the code publishes.

Run `make openapi` (it writes these too) after changing an event; a test fails while a committed schema is out of
date, and another validates what the code publishes against them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from connection_repair.domain.bus_events import (
    ConnectionAttentionEnded,
    ConnectionNeedsAttention,
    ConnectionReplaced,
    MeldWebhookReceived,
)
from connection_repair.domain.incident import InstitutionIncidentEnded, InstitutionIncidentStarted

EVENTS_DIR = Path(__file__).resolve().parent.parent / "docs" / "events"
# Detail-type -> the model its detail is.
MODELS: dict[str, type[BaseModel]] = {
    model.DETAIL_TYPE: model
    for model in (
        ConnectionNeedsAttention,
        ConnectionAttentionEnded,
        ConnectionReplaced,
        InstitutionIncidentStarted,
        InstitutionIncidentEnded,
    )
}
DESCRIPTIONS = {
    ConnectionNeedsAttention.DETAIL_TYPE: (
        "A connection's needs-attention episode began (or was announced once its customer became known): the "
        "customer has something to do (`action`)."
    ),
    ConnectionAttentionEnded.DETAIL_TYPE: (
        "A connection's needs-attention episode ended; `resolution` says how: REPAIRED (usable again), DELETED, "
        "EXPIRED, SUPERSEDED (replaced by a new connection) or REPAIR_FAILED (repairs kept failing: start a new "
        "connection). Named `Connection Repaired` before version 1."
    ),
    ConnectionReplaced.DETAIL_TYPE: "A connection started to replace another completed; the old one is retired.",
    InstitutionIncidentStarted.DETAIL_TYPE: "Many of an institution's connections broke at once: an incident began.",
    InstitutionIncidentEnded.DETAIL_TYPE: "An institution's incident is over.",
}


def file_name(detail_type: str) -> str:
    return re.sub(r"\W+", "-", detail_type.lower()) + ".json"


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema(by_alias=True, mode="serialization")
    # The detail is the model without its `kind` (the outbox's own tag): EventBridge's detail-type names the event.
    schema["properties"].pop("kind", None)
    for field in schema["properties"].values():
        field.pop("title", None)  # pydantic's, made from the alias: says nothing the name does not
    schema["required"] = [name for name in schema.get("required", []) if name not in ("kind", "version")] + ["version"]
    return schema


def meld_webhook_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "A verified Meld webhook of any type, as Meld sent it (its envelope, `version` being Meld's) but without "
            "`serviceProviderDetails`; a payload too large for EventBridge is left out (`payloadOmitted`)."
        ),
        "properties": {
            "eventType": {"type": "string"},
            "eventId": {"type": "string"},
            "timestamp": {"type": "string"},
            "accountId": {"type": "string"},
            "profileId": {"type": "string"},
            "version": {"type": "string"},
            "payload": {"type": "object"},
            "payloadOmitted": {"const": True},
        },
        "required": ["eventType", "eventId", "timestamp"],
    }


def schemas() -> dict[str, str]:
    """File name -> the schema's text (sorted and indented: a stable, reviewable diff)."""
    documents: dict[str, dict[str, Any]] = {}
    for detail_type, model in MODELS.items():
        documents[detail_type] = model_schema(model) | {"description": DESCRIPTIONS[detail_type]}
    documents[MeldWebhookReceived.DETAIL_TYPE] = meld_webhook_schema()
    return {
        file_name(detail_type): json.dumps(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": f"{detail_type} (EventBridge detail, source connection-repair)",
            }
            | schema,
            indent=2,
            sort_keys=True,
        )
        + "\n"
        for detail_type, schema in documents.items()
    }


def main() -> None:
    EVENTS_DIR.mkdir(exist_ok=True)
    generated = schemas()
    for name, text in generated.items():
        (EVENTS_DIR / name).write_text(text)
    for stale in {path.name for path in EVENTS_DIR.glob("*.json")} - set(generated):
        (EVENTS_DIR / stale).unlink()
    print(f"wrote {len(generated)} schemas in docs/events/")


if __name__ == "__main__":
    main()
