"""What an AWS error means to a caller: load (503 and a retry later) or anything else."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from connection_repair.platform.aws import is_throttled


def error(code: str, *reasons: str) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": "refused"}}
    if reasons:
        response["CancellationReasons"] = [{"Code": reason} for reason in reasons]
    return ClientError(response, "TransactWriteItems")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("refusal", "throttled"),
    [
        (error("ProvisionedThroughputExceededException"), True),
        (error("ThrottlingException"), True),
        (error("TransactionCanceledException", "None", "TransactionConflict"), True),
        (error("TransactionCanceledException", "ThrottlingError"), True),
        (error("TransactionCanceledException", "None", "ConditionalCheckFailed"), False),
        (error("ConditionalCheckFailedException"), False),
        (error("ValidationException"), False),
        (TimeoutError("read timed out"), False),
    ],
)
def test_only_refusals_for_load_count_as_throttled(refusal: BaseException, throttled: bool) -> None:
    assert is_throttled(refusal) is throttled
