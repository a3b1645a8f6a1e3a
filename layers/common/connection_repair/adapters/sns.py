"""SMS through SNS: the notifier's ``NotificationChannel`` for SMS."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connection_repair.adapters.sending import one_send
from connection_repair.notify.records import Message

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
else:
    SNSClient = Any


# SNS's answer for a number it cannot publish to names the number ("PhoneNumber Reason: +1… is not valid").
PERMANENT = frozenset({"InvalidParameter", "InvalidParameterValue"})


class SnsSmsChannel:
    """A transactional SMS straight to the phone number (no topic)."""

    def __init__(self, client: SNSClient) -> None:
        self._client = client

    def send(self, address: str, message: Message) -> None:
        with one_send(address, permanent_codes=PERMANENT):
            self._client.publish(
                PhoneNumber=address,
                Message=message.sms,
                MessageAttributes={"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}},
            )
