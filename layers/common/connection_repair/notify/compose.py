"""What a message says: plain words, the bank's name and a link into the app; never a token, key or secret."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from connection_repair.domain.status_policy import Action
from connection_repair.notify.records import EpisodeNotice, Message

_HAPPENED: Mapping[tuple[str | None, str | None], str] = {
    ("ACTIVE", "ACCESS_EXPIRING_SOON"): "Your permission to share data from {bank} expires soon.",
    ("ACTIVE", "NEW_ACCOUNTS_AVAILABLE"): "{bank} has accounts you have not shared with us yet.",
    ("ACTIVE", "RECONNECT_AVAILABLE"): "{bank} has accounts you have not shared with us yet.",
    ("DEGRADED", "INSTITUTION_ACTION_REQUIRED"): (
        "{bank} needs you to do something on its website or app (for example accept new terms) "
        "before we can update your data."
    ),
    ("DEGRADED", "INTERACTIVE_REFRESH"): "{bank} asks you to confirm every update of your data yourself.",
    ("UNRECOVERABLE", None): "Updates from {bank} have kept failing, so your data is no longer up to date.",
    ("EXPIRED", None): "Your connection to {bank} has expired, so your data is no longer up to date.",
    ("DELETED", None): "Your connection to {bank} was removed, so your data is no longer up to date.",
}
# "Link again" after reconnecting kept failing (the status still asks for a repair that will not work).
_HAPPENED_REPAIRS_FAILED = "Reconnecting {bank} has not worked, so the connection has to be made again."


_HAPPENED_DEFAULT = "We can no longer update your data from {bank}: the bank needs you to sign in again."


_TO_DO: Mapping[Action, str] = {
    Action.REPAIR: "Reconnect {bank} in the app; it takes about a minute.",
    Action.RENEW_ACCESS: "Renew access in the app to keep your {bank} data up to date.",
    Action.ADD_ACCOUNTS: "If you want them in the app too, add them in a minute.",
    Action.START_NEW_CONNECTION: "Link {bank} again in the app; it takes about a minute.",
}


_SUBJECT: Mapping[Action, str] = {
    Action.REPAIR: "Reconnect your {bank} account",
    Action.RENEW_ACCESS: "Renew access to your {bank} account",
    Action.ADD_ACCOUNTS: "New accounts available at {bank}",
    Action.START_NEW_CONNECTION: "Link your {bank} account again",
}


# When Meld has not named the bank yet ("Reconnect your your bank account" would not do).
_SUBJECT_UNNAMED: Mapping[Action, str] = {
    Action.REPAIR: "Reconnect your bank account",
    Action.RENEW_ACCESS: "Renew access to your bank account",
    Action.ADD_ACCOUNTS: "New accounts available at your bank",
    Action.START_NEW_CONNECTION: "Link your bank account again",
}


# Characters in one SMS segment (GSM-7); longer texts go out, and are billed, as several.
SMS_SEGMENT = 160


def _bank(notice: EpisodeNotice) -> str:
    return notice.institution_name or "your bank"


def what_happened(notice: EpisodeNotice) -> str:
    template = _HAPPENED.get((notice.status, notice.status_reason)) or _HAPPENED.get((notice.status, None))
    if template is None and notice.action == Action.START_NEW_CONNECTION:
        template = _HAPPENED_REPAIRS_FAILED
    return (template or _HAPPENED_DEFAULT).format(bank=_bank(notice))


def button(notice: EpisodeNotice) -> str:
    verb = "Link" if notice.action == Action.START_NEW_CONNECTION else "Reconnect"
    again = " again" if notice.action == Action.START_NEW_CONNECTION else ""
    return f"{verb} {_bank(notice)}{again}"


def subject_for(notice: EpisodeNotice) -> str:
    if notice.institution_name is None:
        return _SUBJECT_UNNAMED.get(notice.action, _SUBJECT_UNNAMED[Action.REPAIR])
    return _SUBJECT.get(notice.action, _SUBJECT[Action.REPAIR]).format(bank=notice.institution_name)


def what_to_do(notice: EpisodeNotice) -> str:
    return _TO_DO.get(notice.action, _TO_DO[Action.REPAIR]).format(bank=_bank(notice))


@dataclass(frozen=True)
class MessageComposer:
    """Plain words, the institution's name and a link into the app; never a token, key or secret."""

    reconnect_url: str  # contains {connectionId}
    app_name: str = "your app"

    def link(self, notice: EpisodeNotice) -> str:
        return self.reconnect_url.replace("{connectionId}", quote(notice.connection_id, safe=""))

    def compose(self, notices: Sequence[EpisodeNotice]) -> Message:
        if not notices:
            raise ValueError("nothing to compose")
        reminder = all(notice.next_message > 0 for notice in notices)
        prefix = "Reminder: " if reminder else ""
        if len(notices) == 1:
            subject = prefix + subject_for(notices[0])
        else:
            subject = f"{prefix}{len(notices)} bank connections need your attention"
        text_parts = ["Hello,", ""]
        html_parts = ["<p>Hello,</p>"]
        for notice in notices:
            heading = _bank(notice)
            text_parts += [heading, what_happened(notice), what_to_do(notice), self.link(notice), ""]
            html_parts.append(
                f"<h3>{html.escape(heading)}</h3><p>{html.escape(what_happened(notice))}</p>"
                f'<p>{html.escape(what_to_do(notice))} <a href="{html.escape(self.link(notice))}">'
                f"{html.escape(button(notice))}</a></p>"
            )
        footer = (
            f"You receive this because you connected a bank to {self.app_name}. "
            "You can change or stop these messages in the app's notification settings."
        )
        text_parts.append(footer)
        html_parts.append(f"<p><small>{html.escape(footer)}</small></p>")
        body_html = f'<!doctype html><html><body style="font-family:sans-serif">{"".join(html_parts)}</body></html>'
        return Message(subject=subject, text="\n".join(text_parts), html=body_html, sms=self.sms(notices, subject))

    def sms(self, notices: Sequence[EpisodeNotice], subject: str) -> str:
        """The subject and the link (the email tells the whole story); a digest names as many banks as fit."""
        start, link = f"{self.app_name}: {subject}", self.link(notices[0])
        if len(notices) == 1:
            return f"{start}: {link}"
        banks = [_bank(notice) for notice in notices]
        for shown in range(len(banks), 0, -1):
            more = f" and {len(banks) - shown} more" if shown < len(banks) else ""
            text = f"{start} ({', '.join(banks[:shown])}{more}). {link}"
            if len(text) <= SMS_SEGMENT:
                break
        return text
