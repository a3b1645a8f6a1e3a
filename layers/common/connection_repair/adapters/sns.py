"""SMS through SNS: the notifier's ``NotificationChannel`` for SMS."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connection_repair.adapters.sending import one_send
from connection_repair.notify.ports import SendRefused
from connection_repair.notify.records import Message

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
else:
    SNSClient = Any


# SNS's answer for a number it cannot publish to names the number ("PhoneNumber Reason: +1… is not valid").
PERMANENT = frozenset({"InvalidParameter", "InvalidParameterValue"})
# The reason an opted-out number is marked unusable with (and counted under).
OPTED_OUT = "OPTED_OUT"


class SnsSmsChannel:
    """A transactional SMS straight to the phone number (no topic)."""

    def __init__(self, client: SNSClient) -> None:
        self._client = client

    def send(self, address: str, message: Message, *, customer: str) -> str:
        with one_send(address, permanent_codes=PERMANENT):
            # A customer who answered STOP is opted out: SNS would take the message and drop it. Asked first, the
            # refusal is for good, so the number is marked unusable and no message is tried on it again.
            if self._client.check_if_phone_number_is_opted_out(phoneNumber=address)["isOptedOut"]:
                raise SendRefused(OPTED_OUT, permanent=True)
            response = self._client.publish(
                PhoneNumber=address,
                Message=message.sms,
                MessageAttributes={"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}},
            )
        return response.get("MessageId", "")
