"""A failed Meld call, typed by Meld's answer; to the domain each is the ``MeldFailure`` of its kind."""

from __future__ import annotations

from typing import ClassVar

from connection_repair.repair.ports import MeldFailure, MeldFailureKind


class MeldError(MeldFailure):
    """A Meld call that failed, typed by Meld's answer; to the domain it is the ``MeldFailure`` of its ``KIND``.
    ``status_code`` is None when no response arrived (timeout, connection error)."""

    # Any other 4xx (e.g. 410): Meld refused it; nothing to retry.
    KIND: ClassVar[MeldFailureKind] = MeldFailureKind.REJECTED

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            self.KIND, message, status_code=status_code, code=code, request_id=request_id, retry_after=retry_after
        )

    def __str__(self) -> str:
        status = f"HTTP {self.status_code}" if self.status_code is not None else "no response"
        code = f" {self.code}" if self.code else ""
        request = f" (requestId {self.request_id})" if self.request_id else ""
        return f"Meld {status}{code}: {self.message}{request}"


class MeldBadRequest(MeldError):
    """400/422: Meld rejected what we sent."""

    KIND = MeldFailureKind.REJECTED


class MeldAuthError(MeldError):
    """401/403: wrong key, or a key for the other environment. A configuration problem, not the customer's."""

    KIND = MeldFailureKind.MISCONFIGURED


class MeldNotFound(MeldError):
    """404: unknown id (or an id from the other environment)."""

    KIND = MeldFailureKind.NOT_FOUND


class MeldConflict(MeldError):
    """409: the connection's state forbids it (e.g. repairing an EXPIRED, DELETED or IN_PROGRESS connection)."""

    KIND = MeldFailureKind.CONFLICT


class MeldRateLimited(MeldError):
    """429 that outlasted the retries or the deadline; ``retry_after`` says when Meld expects us back, if it did."""

    KIND = MeldFailureKind.UNAVAILABLE


class MeldUnavailable(MeldError):
    """5xx, timeouts or connection errors that outlasted the retries or the deadline."""

    KIND = MeldFailureKind.UNAVAILABLE


class MeldBadResponse(MeldError):
    """A response we cannot use: not 2xx without being an error, not JSON, or not the documented shape."""

    KIND = MeldFailureKind.BAD_RESPONSE


ERRORS_BY_STATUS: dict[int, type[MeldError]] = {
    400: MeldBadRequest,
    422: MeldBadRequest,
    401: MeldAuthError,
    403: MeldAuthError,
    404: MeldNotFound,
    409: MeldConflict,
    429: MeldRateLimited,
}
