"""``ports.ConnectGateway`` over the ``MeldClient``: Meld's typed errors become the domain's ``MeldFailure``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from connection_repair.adapters.meld import (
    ConnectSession,
    MeldAuthError,
    MeldBadRequest,
    MeldBadResponse,
    MeldClient,
    MeldConflict,
    MeldError,
    MeldNotFound,
    MeldRateLimited,
    MeldUnavailable,
    RepairGrant,
)
from connection_repair.ports import MeldFailure, MeldFailureKind

_KINDS: tuple[tuple[type[MeldError], MeldFailureKind], ...] = (
    (MeldNotFound, MeldFailureKind.NOT_FOUND),
    (MeldConflict, MeldFailureKind.CONFLICT),
    (MeldBadRequest, MeldFailureKind.REJECTED),
    (MeldAuthError, MeldFailureKind.MISCONFIGURED),
    (MeldRateLimited, MeldFailureKind.UNAVAILABLE),
    (MeldUnavailable, MeldFailureKind.UNAVAILABLE),
    (MeldBadResponse, MeldFailureKind.BAD_RESPONSE),
)


def _kind(error: MeldError) -> MeldFailureKind:
    for error_class, kind in _KINDS:
        if isinstance(error, error_class):
            return kind
    # Any other 4xx (e.g. 410): Meld refused it; nothing to retry.
    return MeldFailureKind.REJECTED


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except MeldError as error:
        raise MeldFailure(
            _kind(error),
            error.message,
            status_code=error.status_code,
            code=error.code,
            request_id=error.request_id,
            retry_after=error.retry_after,
        ) from error


class MeldConnectGateway:
    def __init__(self, client: MeldClient) -> None:
        self._client = client

    def repair(self, connection_id: str) -> RepairGrant:
        with _translated():
            return self._client.repair_connection(connection_id)

    def start(
        self, external_customer_id: str, *, institution_id: str | None, products: Sequence[str] | None
    ) -> ConnectSession:
        with _translated():
            return self._client.start_connection(external_customer_id, institution_id=institution_id, products=products)

    def delete(self, connection_id: str) -> None:
        with _translated():
            self._client.delete_connection(connection_id)
