"""What a provider's answer to one send means for the notifier: refused (for now or for good), or unknown.

A send is made once (``SEND_CONFIG``): botocore would re-send after a read timeout, when the provider may already have
taken the message. An answer that says "not taken" (throttled, quota, rejected: any 4xx) is ``SendRefused``; a
timeout, a dropped connection or a 5xx leave the outcome unknown and propagate as they are (docs/decisions.md §32).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager

from botocore.config import Config
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from connection_repair.notify.ports import SendRefused

# What SES and SNS answer when the account's send rate or daily quota is used up: the message is fine, later.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "Throttled",
        "ThrottledException",
        "TooManyRequestsException",
        "MaxSendingRateExceeded",
        "LimitExceededException",
    }
)
SEND_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "total_max_attempts": 1})


@contextmanager
def one_send(address: str, *, permanent_codes: Collection[str], own_identity: str | None = None) -> Iterator[None]:
    """Translate the provider's refusal of a send to ``address``.

    A refusal is permanent for the address only when its code says so and the provider's message names the address
    (and not our own sending identity): a deployment's mistake must never mark every customer's contact unusable.
    """
    try:
        yield
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
        if status >= 500:
            raise
        code = error.response.get("Error", {}).get("Code", "Unknown")
        message = error.response.get("Error", {}).get("Message", "")
        about_address = address.lower() in message.lower()
        ours = own_identity is not None and own_identity.lower() in message.lower()
        permanent = code in permanent_codes and about_address and not ours
        raise SendRefused(code, permanent=permanent, throttled=code in THROTTLING_CODES) from error
    except (ConnectTimeoutError, EndpointConnectionError) as error:
        # The connection never opened: nothing reached the provider.
        raise SendRefused("Unreachable", permanent=False) from error
