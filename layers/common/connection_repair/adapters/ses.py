"""Email through SES v2: the notifier's ``NotificationChannel`` for EMAIL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connection_repair.adapters.sending import one_send
from connection_repair.adapters.ses_tags import CUSTOMER_TAG, customer_tag
from connection_repair.notify.records import Message

if TYPE_CHECKING:
    from mypy_boto3_sesv2 import SESV2Client
else:
    SESV2Client = Any


# SES's answers that can be about the recipient: not verified (sandbox), on the suppression list, not an address.
PERMANENT = frozenset({"MessageRejected", "BadRequestException"})


class SesEmailChannel:
    """Email with an HTML and a text part, from a verified SES identity."""

    def __init__(self, client: SESV2Client, sender: str, *, configuration_set: str | None = None) -> None:
        self._client = client
        self._sender = sender
        self._configuration_set = configuration_set

    def send(self, address: str, message: Message, *, customer: str) -> str:
        arguments: dict[str, Any] = {
            "FromEmailAddress": self._sender,
            "Destination": {"ToAddresses": [address]},
            "Content": {
                "Simple": {
                    "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                    "Body": {
                        "Text": {"Data": message.text, "Charset": "UTF-8"},
                        "Html": {"Data": message.html, "Charset": "UTF-8"},
                    },
                }
            },
        }
        if message.unsubscribe_url:
            # RFC 8058: the mail client offers "unsubscribe" and POSTs to the link, no sign-in, no page to read.
            arguments["Content"]["Simple"]["Headers"] = [
                {"Name": "List-Unsubscribe", "Value": f"<{message.unsubscribe_url}>"},
                {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
            ]
        if self._configuration_set:
            # Its event destination reports bounces and complaints; the tag says whose address it was.
            arguments["ConfigurationSetName"] = self._configuration_set
            tag = customer_tag(customer)
            if tag is not None:
                arguments["EmailTags"] = [{"Name": CUSTOMER_TAG, "Value": tag}]
        with one_send(address, permanent_codes=PERMANENT, own_identity=self._sender):
            response = self._client.send_email(**arguments)
        return response.get("MessageId", "")
