"""Erase one customer, idempotently: running it again finds nothing left and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from connection_repair.erasure.ports import CustomerRecords
from connection_repair.platform.observability import logger


@dataclass(frozen=True)
class Erasure:
    items_deleted: int
    connections_detached: int
    events_redacted: int


def erase_customer(records: CustomerRecords, external_customer_id: str) -> Erasure:
    # Connections first: each one names the events to redact; the customer's own items last, so that a run cut short
    # is finished by running it again.
    connections = records.detach_connections(external_customer_id)
    redacted = sum(records.redact_events(connection, external_customer_id) for connection in connections)
    deleted = records.delete_customer_items(external_customer_id)
    erasure = Erasure(items_deleted=deleted, connections_detached=len(connections), events_redacted=redacted)
    # The counts only: the customer's id is what was asked to be forgotten.
    logger.info(
        "Customer erased",
        items_deleted=erasure.items_deleted,
        connections_detached=erasure.connections_detached,
        events_redacted=erasure.events_redacted,
    )
    return erasure
