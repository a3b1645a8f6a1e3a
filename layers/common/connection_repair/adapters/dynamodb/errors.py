"""What DynamoDB says when a conditional write or a transaction is refused: one reading for every store.

A cancelled transaction's reasons are read by ``platform.aws.cancellation_reasons``, which the handlers use too.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

CONDITION_FAILED = "ConditionalCheckFailed"


def is_conditional_failure(error: ClientError) -> bool:
    """A single-item write refused by its condition."""
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def failed_condition(reasons: list[dict[str, Any]], index: int) -> bool:
    """Whether the transaction's item at ``index`` failed its condition."""
    return len(reasons) > index and reasons[index].get("Code") == CONDITION_FAILED
