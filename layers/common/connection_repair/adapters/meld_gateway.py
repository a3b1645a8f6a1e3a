"""``ports.ConnectGateway`` over the ``MeldClient``. Its errors are ``MeldFailure``s already (``MeldError``)."""

from __future__ import annotations

from collections.abc import Sequence

from connection_repair.adapters.meld import ConnectSession, MeldClient, RepairGrant


class MeldConnectGateway:
    def __init__(self, client: MeldClient) -> None:
        self._client = client

    def repair(self, connection_id: str) -> RepairGrant:
        return self._client.repair_connection(connection_id)

    def start(
        self, external_customer_id: str, *, institution_id: str | None, products: Sequence[str] | None
    ) -> ConnectSession:
        return self._client.start_connection(external_customer_id, institution_id=institution_id, products=products)

    def delete(self, connection_id: str) -> None:
        self._client.delete_connection(connection_id)
