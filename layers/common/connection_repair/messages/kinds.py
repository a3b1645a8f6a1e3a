"""The kinds of message a customer gets, each with its own templates."""

from __future__ import annotations

from enum import StrEnum


class MessageKind(StrEnum):
    FIRST_NOTICE = "first_notice"
    REMINDER = "reminder"
    DIGEST = "digest"
    LINK_AGAIN = "link_again"
    INCIDENT_FOLLOW_UP = "incident_follow_up"
