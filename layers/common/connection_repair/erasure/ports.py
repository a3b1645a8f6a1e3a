"""What erasing a customer touches in the store."""

from __future__ import annotations

from typing import Protocol


class CustomerRecords(Protocol):
    def delete_customer_items(self, external_customer_id: str) -> int:
        """Delete every item of the customer's own partition (preferences, contact marks, notification history);
        how many were deleted."""
        ...

    def detach_connections(self, external_customer_id: str) -> list[str]:
        """Remove the customer from each connection still theirs; the connections' ids."""
        ...

    def redact_events(self, connection_id: str, external_customer_id: str) -> int:
        """Remove the customer's ids from the stored bodies of the connection's events; how many were changed."""
        ...
