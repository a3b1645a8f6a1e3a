"""What an AWS error means to a caller: refused for load (retry later), or something else."""

from __future__ import annotations

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


def is_throttled(error: BaseException) -> bool:
    """DynamoDB (or another AWS service) refused the request for load: the same request later will likely pass."""
    if not isinstance(error, ClientError):
        return False
    code = error.response.get("Error", {}).get("Code")
    if code in THROTTLING_CODES:
        return True
    if code == "TransactionCanceledException":
        reasons = error.response.get("CancellationReasons", [])
        return any(reason.get("Code") in BUSY_CANCELLATIONS for reason in reasons)
    return False
