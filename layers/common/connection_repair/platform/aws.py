"""What an AWS error means to a caller: refused for load (retry later), a cancelled transaction's reasons."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

# Refused for load, after botocore's own retries gave up.
THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
    }
)
# A cancelled transaction whose items were busy (another transaction on the same item) or throttled.
BUSY_CANCELLATIONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


def cancellation_reasons(error: ClientError) -> list[dict[str, Any]] | None:
    """Per-item reasons of a cancelled transaction, in request order; None for any other error."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
    return reasons


def is_throttled(error: BaseException) -> bool:
    """DynamoDB (or another AWS service) refused the request for load: the same request later will likely pass."""
    if not isinstance(error, ClientError):
        return False
    if error.response.get("Error", {}).get("Code") in THROTTLING_CODES:
        return True
    reasons = cancellation_reasons(error) or []
    return any(reason.get("Code") in BUSY_CANCELLATIONS for reason in reasons)
