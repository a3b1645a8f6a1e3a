"""What DynamoDB says when a conditional write or a transaction is refused: one reading for every store."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

CONDITION_FAILED = "ConditionalCheckFailed"


def is_conditional_failure(error: ClientError) -> bool:
    """A single-item write refused by its condition."""
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def cancellation_reasons(error: ClientError) -> list[dict[str, Any]] | None:
    """Per-item reasons of a cancelled transaction, in request order; None for any other error."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
    return reasons


def failed_condition(reasons: list[dict[str, Any]], index: int) -> bool:
    """Whether the transaction's item at ``index`` failed its condition."""
    return len(reasons) > index and reasons[index].get("Code") == CONDITION_FAILED
