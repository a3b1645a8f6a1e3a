"""SES's bounce and complaint events (its configuration set's event destination, through SNS), read into
``ContactFeedback``. Event publishing names the kind ``eventType``; SES's older feedback notifications name it
``notificationType``: both are read.

https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from connection_repair.adapters.ses_tags import CUSTOMER_TAG, customer_of_tag
from connection_repair.notify.feedback import ContactFeedback, Verdict
from connection_repair.preferences.model import Channel


class _Recipient(BaseModel):
    email_address: str = Field(alias="emailAddress")


class _Bounce(BaseModel):
    bounce_type: str = Field(alias="bounceType")
    bounced_recipients: list[_Recipient] = Field(alias="bouncedRecipients")


class _Complaint(BaseModel):
    complained_recipients: list[_Recipient] = Field(alias="complainedRecipients")


class _Mail(BaseModel):
    tags: dict[str, list[str]] = Field(default_factory=dict)


class SesEvent(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    kind: str | None = Field(None, alias="eventType")
    notification_kind: str | None = Field(None, alias="notificationType")
    mail: _Mail = Field(default_factory=_Mail)
    bounce: _Bounce | None = None
    complaint: _Complaint | None = None


def feedback_of(message: str) -> list[ContactFeedback]:
    """The addresses an SES event (an SNS message's text) condemns: a permanent bounce's, a complaint's. Anything
    else (a transient bounce, a delivery, another event type) condemns none."""
    event = SesEvent.model_validate_json(message)
    kind = event.kind or event.notification_kind
    tags = event.mail.tags.get(CUSTOMER_TAG) or []
    customer = customer_of_tag(tags[0]) if tags else None
    if kind == "Bounce" and event.bounce is not None and event.bounce.bounce_type == "Permanent":
        recipients, verdict = event.bounce.bounced_recipients, Verdict.BOUNCED
    elif kind == "Complaint" and event.complaint is not None:
        recipients, verdict = event.complaint.complained_recipients, Verdict.COMPLAINED
    else:
        return []
    return [ContactFeedback(Channel.EMAIL, each.email_address, verdict, customer) for each in recipients]
