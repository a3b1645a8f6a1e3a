"""Meld's response bodies as pydantic models.

Unknown fields are dropped: that is how ``serviceProviderDetails`` (it can hold provider access tokens) never gets in.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from connection_repair.domain.base import CamelModel


class MeldResponse(CamelModel):
    """A Meld response body. Unknown fields are dropped: that is how ``serviceProviderDetails`` never gets in."""

    # Not frozen: ``ports.MeldConnection`` declares plain attributes, which a frozen model would not satisfy.
    model_config = ConfigDict(extra="ignore")


class MeldConnectionInfo(MeldResponse):
    """GET /bank-linking/connections/{id}; satisfies ``ports.MeldConnection``."""

    connection_id: str = Field(alias="id", min_length=1)
    # The listing's cursor: opaque, in Meld's order.
    key: str | None = None
    account_id: str | None = None
    customer_id: str | None = None
    external_customer_id: str | None = None
    institution_id: str | None = None
    institution_name: str | None = None
    status: str | None = None
    status_reason: str | None = None
    products: list[str] | None = None
    created_at: datetime | None = None
    duplicate_connection_ids: list[str] | None = None
    active_duplicate_connection_id: str | None = None


class ConnectionPage(MeldResponse):
    """One page of GET /bank-linking/connections; ``remaining`` says how many follow."""

    connections: list[MeldConnectionInfo]
    count: int | None = None
    remaining: int | None = None


class NewConnectionGrant(MeldResponse):
    """POST /bank-linking/connect/start: a new connection and the token that opens the widget for it."""

    connection_id: str = Field(alias="id", min_length=1)
    # Whoever holds the token can link accounts to this customer: kept out of repr, so out of logs.
    connect_token: str = Field(min_length=1, repr=False)
    widget_url: str = Field(min_length=1, repr=False)
    customer_id: str | None = None
    external_customer_id: str | None = None


class RepairGrant(MeldResponse):
    """POST /bank-linking/connect/repair: the same connection, and a token that reopens the widget for it."""

    connection_id: str = Field(alias="id", min_length=1)
    connect_token: str = Field(min_length=1, repr=False)
    widget_url: str = Field(min_length=1, repr=False)
    institution_id: str | None = None
