"""What a provider's answer to one send means: refused for now, refused for good, or unknown (propagated)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from connection_repair.adapters.sending import one_send
from connection_repair.notify.ports import SendRefused

ADDRESS = "ada@example.com"
SENDER = "notifications@app.example.com"


def answer(code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "SendEmail"
    )


def outcome(error: Exception) -> Exception:
    """What comes out of a send that failed with ``error``."""
    try:
        with one_send(ADDRESS, permanent_codes={"MessageRejected"}, own_identity=SENDER):
            raise error
    except Exception as raised:
        return raised
    raise AssertionError("the error was swallowed")


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (answer("TooManyRequestsException", status=429), False),
        (answer("MessageRejected", f"not verified: {ADDRESS.upper()}"), True),
        (answer("MessageRejected", "the message was rejected"), False),  # about what? not proven to be the address
        (answer("MessageRejected", f"not verified: {SENDER}, {ADDRESS}"), False),  # our sender: the deployment's fault
        (answer("AccountSuspendedException", f"{ADDRESS}"), False),
        (ConnectTimeoutError(endpoint_url="https://email.invalid"), False),
        (EndpointConnectionError(endpoint_url="https://email.invalid"), False),
    ],
    ids=["throttled", "rejected-address", "rejected-unnamed", "rejected-sender", "account", "connect", "endpoint"],
)
def test_a_refusal_says_whether_it_is_for_good(error: Exception, permanent: bool) -> None:
    refused = outcome(error)
    assert isinstance(refused, SendRefused)
    assert refused.permanent is permanent
    assert refused.__cause__ is error


@pytest.mark.parametrize(
    ("error", "throttled"),
    [
        (answer("TooManyRequestsException", status=429), True),  # SES v2: the sending rate
        (answer("Throttling", "Maximum sending rate exceeded."), True),  # SES v1
        (answer("ThrottledException"), True),  # SNS SMS
        (answer("LimitExceededException", "Daily message quota exceeded"), True),
        (answer("MessageRejected", f"not verified: {ADDRESS}"), False),
        (answer("AccountSuspendedException"), False),
        (ConnectTimeoutError(endpoint_url="https://email.invalid"), False),
    ],
    ids=["ses-rate", "ses-v1-rate", "sns-rate", "quota", "rejected", "suspended", "connect"],
)
def test_a_throttled_send_says_so(error: Exception, throttled: bool) -> None:
    refused = outcome(error)
    assert isinstance(refused, SendRefused)
    assert refused.throttled is throttled


@pytest.mark.parametrize(
    "error",
    [
        answer("InternalFailure", status=500),
        answer("ServiceUnavailable", status=503),
        ReadTimeoutError(endpoint_url="x"),
    ],
    ids=["500", "503", "read-timeout"],
)
def test_an_answer_that_may_follow_acceptance_is_not_a_refusal(error: Exception) -> None:
    assert outcome(error) is error
