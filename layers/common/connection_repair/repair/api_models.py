"""The Repair API's request and response bodies (camelCase on the wire). The OpenAPI document is generated from them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import ConfigDict, Field

from connection_repair.domain.base import CamelModel
from connection_repair.domain.connection import Connection
from connection_repair.domain.incident import InstitutionIncident, Trigger
from connection_repair.domain.status_policy import Action
from connection_repair.repair.service import ConnectSession

# Meld's ids are short base58 strings; this admits them and keeps paths, keys and logs free of anything else.
MELD_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MeldId = Annotated[str, Field(pattern=MELD_ID_PATTERN, examples=["WQ5RitxnrnggqcT8noLoZN"])]


class Product(StrEnum):
    BALANCES = "BALANCES"
    IDENTIFIERS = "IDENTIFIERS"
    INVESTMENT_HOLDINGS = "INVESTMENT_HOLDINGS"
    INVESTMENT_TRANSACTIONS = "INVESTMENT_TRANSACTIONS"
    OWNERS = "OWNERS"
    TRANSACTIONS = "TRANSACTIONS"


class IncidentView(CamelModel):
    """The connection's institution is having an outage: the customer can do nothing about it yet."""

    since: datetime = Field(description="When the incident was detected")
    hold_until: datetime = Field(description="Messages about connections that broke in it wait until then at most")
    trigger: Trigger = Field(
        description="SURGE: many of its connections broke together; INSTITUTION_REASON: Meld said so"
    )

    @classmethod
    def of(cls, incident: InstitutionIncident) -> Self:
        return cls(since=incident.since, hold_until=incident.hold_until, trigger=incident.trigger)


class ConnectionView(CamelModel):
    """One of the caller's connections and what the customer should do about it."""

    connection_id: str
    institution_id: str | None
    institution_name: str | None
    status: str | None = Field(description="Meld's status, e.g. ACTIVE, RECONNECT_REQUIRED (the list may grow)")
    status_reason: str | None
    action: Action = Field(description="What the reconnect prompt should ask of the customer")
    attention_since: datetime | None = Field(description="Since when the connection needs the customer; null if not")
    repair_attempts: int = Field(description="Repair tokens issued during the current problem")
    last_repair_at: datetime | None
    failed_repairs: int = Field(description="Completed repairs that left the connection broken")
    repair_pending: bool = Field(
        description=(
            "A repair token was issued and Meld has not yet judged the repair: after the widget closes, say "
            '"checking…" and poll until the status or failedRepairs changes'
        )
    )
    repair_started_at: datetime | None = Field(description="When the pending repair's token was issued; null if none")
    superseded_by: str | None = Field(description="The connection that replaced this one, if any")
    institution_incident: IncidentView | None = Field(
        None, description="The institution's ongoing outage, if it has one (say so; nothing to do yet)"
    )

    @classmethod
    def of(cls, connection: Connection, incidents: Mapping[str, InstitutionIncident] | None = None) -> Self:
        view = cls.model_validate(
            connection.model_dump()
            | {"repair_started_at": connection.last_repair_at if connection.repair_pending else None}
        )
        incident = (incidents or {}).get(connection.institution_id or "")
        return view.model_copy(update={"institution_incident": IncidentView.of(incident)}) if incident else view


class ConnectionList(CamelModel):
    connections: list[ConnectionView]


class ConnectSessionView(CamelModel):
    """A connect token and the widget URL to open with it. Do not store or log either."""

    connection_id: str
    institution_id: str | None
    connect_token: str
    widget_url: str = Field(description="Launch Meld's widget with this URL as given; never build it")
    expires_at: datetime = Field(description="The earlier of the token's exp and issue time + 3 h")

    @classmethod
    def of(cls, session: ConnectSession) -> Self:
        # Field for field from the session (NewConnectionView's replacesConnectionId included).
        return cls.model_validate(session, from_attributes=True)


class NewConnectionView(ConnectSessionView):
    replaces_connection_id: str | None = Field(
        description="Deleted at Meld once this connection completes", default=None
    )


class StartConnectionBody(CamelModel):
    model_config = ConfigDict(extra="forbid")

    institution_id: MeldId | None = Field(None, description="Skips the institution picker")
    products: list[Product] | None = Field(None, min_length=1, max_length=len(Product))
    replaces_connection_id: MeldId | None = Field(
        None, description="One of the caller's connections, deleted at Meld once the new one completes"
    )


class ErrorBody(CamelModel):
    code: str = Field(description="Machine-readable, e.g. CONNECTION_NOT_FOUND")
    message: str


class UnauthorizedBody(CamelModel):
    """A 401: API Gateway's JWT authorizer answers ``{"message": "Unauthorized"}``; this API adds ``code`` when the
    verified token lacks the customer claim."""

    message: str = Field(description='"Unauthorized" from API Gateway\'s authorizer')
    code: str | None = Field(None, description="UNAUTHENTICATED: the token has no customer claim")


class ConflictBody(ErrorBody):
    status: str | None = Field(description="The connection's current status")
    action: Action = Field(description="What to do instead, e.g. START_NEW_CONNECTION")


class FieldError(CamelModel):
    field: str
    message: str
    type: str


class ValidationErrorBody(ErrorBody):
    errors: list[FieldError]
