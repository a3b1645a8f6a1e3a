"""The ports Meld serves, over the ``MeldClient``: the connect endpoints and the connection directory."""

from __future__ import annotations

from collections.abc import Sequence

from connection_repair.adapters.meld.client import MeldClient
from connection_repair.adapters.meld.errors import MeldNotFound
from connection_repair.adapters.meld.models import ConnectionPage, MeldConnectionInfo, NewConnectionGrant, RepairGrant


class MeldConnectGateway:
    def __init__(self, client: MeldClient) -> None:
        self._client = client

    def repair(self, connection_id: str) -> RepairGrant:
        return self._client.repair_connection(connection_id)

    def start(
        self, external_customer_id: str, *, institution_id: str | None, products: Sequence[str] | None
    ) -> NewConnectionGrant:
        return self._client.start_connection(external_customer_id, institution_id=institution_id, products=products)

    def delete(self, connection_id: str) -> None:
        self._client.delete_connection(connection_id)


class MeldConnectionDirectory:
    """``ports.ConnectionDirectory`` over a ``MeldClient``: a connection Meld does not know is None, not an error."""

    def __init__(self, client: MeldClient) -> None:
        self._client = client

    def get_connection(self, connection_id: str) -> MeldConnectionInfo | None:
        try:
            return self._client.get_connection(connection_id)
        except MeldNotFound:
            return None


class MeldConnectionListing(MeldConnectionDirectory):
    """``reconcile.ports.MeldConnections``: Meld's search across every customer, and single connections."""

    def list_connections(self, *, statuses: Sequence[str] | None, limit: int, after: str | None) -> ConnectionPage:
        return self._client.list_connections(statuses=statuses, limit=limit, after=after)
