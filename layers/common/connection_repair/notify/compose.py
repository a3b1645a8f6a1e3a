"""What a message says: plain words in the customer's language, the bank's name and a link into the app; never a
token, key or secret. The words and the look come from templates (connection_repair/messages) a deployment can
replace; a replacement that cannot make the message falls back to the project's, and the message still goes out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import Any
from urllib.parse import quote

from connection_repair.domain.status_policy import Action
from connection_repair.messages.dates import babel_locale, moment
from connection_repair.messages.kinds import MessageKind
from connection_repair.messages.render import MessageRenderer, Required
from connection_repair.messages.sms import shortest_fit
from connection_repair.notify.records import EpisodeNotice, Message
from connection_repair.platform.observability import logger
from connection_repair.preferences.model import NotificationPreferences


def kind_of(notices: Sequence[EpisodeNotice]) -> MessageKind:
    """Several connections make a digest; one that must be linked again says so, first message or reminder; a first
    message held through its bank's incident says the incident is over."""
    if len(notices) > 1:
        return MessageKind.DIGEST
    notice = notices[0]
    if notice.action == Action.START_NEW_CONNECTION:
        return MessageKind.LINK_AGAIN
    if notice.next_message > 0:
        return MessageKind.REMINDER
    if notice.held_by_incident:
        return MessageKind.INCIDENT_FOLLOW_UP
    return MessageKind.FIRST_NOTICE


def _for_action(phrases: Mapping[str, str], action: Action) -> str:
    return phrases.get(action.value) or phrases[Action.REPAIR.value]


def what_happened(phrases: Mapping[str, str], notice: EpisodeNotice) -> str:
    """The status and its reason in plain words; "link again" once reconnecting kept failing."""
    known = phrases.get(f"{notice.status}/{notice.status_reason}") or phrases.get(str(notice.status))
    if known is None and notice.action == Action.START_NEW_CONNECTION:
        known = phrases["repairs_failed"]
    return known or phrases["default"]


@dataclass(frozen=True)
class MessageComposer:
    """The app's brand (name, logo, colour), its links, and the customer's language and time zone."""

    reconnect_url: str  # contains {connectionId}
    # Where the customer changes or stops these messages: every message links to it.
    settings_url: str
    app_name: str = "your app"
    logo_url: str | None = None
    brand_color: str = "#1a56db"
    default_locale: str = "en"
    renderer: MessageRenderer = field(default_factory=MessageRenderer)
    # The customer's signed one-click unsubscribe link; None: the messages' "stop" link is settings_url.
    unsubscribe_link: Callable[[str], str | None] | None = None

    def link(self, notice: EpisodeNotice) -> str:
        return self.reconnect_url.replace("{connectionId}", quote(notice.connection_id, safe=""))

    def compose(self, notices: Sequence[EpisodeNotice], preferences: NotificationPreferences | None = None) -> Message:
        if not notices:
            raise ValueError("nothing to compose")
        if self.renderer.has_own:
            try:
                return self._compose(notices, preferences, own=True)
            except Exception as error:  # whatever the deployment's template did, the customer is told
                logger.warning(
                    "The deployment's message template failed; the project's own is sent",
                    kind=kind_of(notices).value,
                    error=f"{type(error).__name__}: {error}",
                )
                return replace(self._compose(notices, preferences, own=False), template_fallback=True)
        return self._compose(notices, preferences, own=False)

    def _compose(
        self, notices: Sequence[EpisodeNotice], preferences: NotificationPreferences | None, *, own: bool
    ) -> Message:
        kind = kind_of(notices)
        tag = preferences.locale if preferences else None
        language = self.renderer.language([tag, self.default_locale], own=own)
        t = self.renderer.phrases(language, own=own)
        zone = preferences.zone() if preferences else UTC
        dates = babel_locale(tag or self.default_locale, language)
        banks = [notice.institution_name or t["your_bank"] for notice in notices]
        links = [self.link(notice) for notice in notices]
        subject, plain_subject = self._subjects(t, kind, notices)
        one_click = self.unsubscribe_link(notices[0].external_customer_id) if self.unsubscribe_link else None
        unsubscribe_url = one_click or self.settings_url
        context: dict[str, Any] = {
            "kind": kind.value,
            "lang": language,
            "t": t,
            "app": {"name": self.app_name, "logo_url": self.logo_url, "color": self.brand_color},
            "subject": subject,
            "intro": t["intro"][kind.value].format(bank=banks[0], count=len(notices)),
            "footer": t["footer"].format(app=self.app_name),
            "unsubscribe_url": unsubscribe_url,
            # With a one-click link to stop them, the messages also link to the app's settings to change them.
            "settings_url": self.settings_url if one_click else None,
            "notices": [
                {
                    "bank": bank,
                    "action": notice.action.value,
                    "happened": what_happened(t["happened"], notice).format(bank=bank),
                    "to_do": _for_action(t["to_do"], notice.action).format(bank=bank),
                    "button": _for_action(t["button"], notice.action).format(bank=bank),
                    "link": link,
                    "since": t["since"].format(date=moment(notice.attention_since, zone, dates)),
                }
                for notice, bank, link in zip(notices, banks, links, strict=True)
            ],
        }
        required = Required(banks=banks, links=links, unsubscribe_url=unsubscribe_url)
        rendered = self.renderer.render(kind, language, context, required, own=own)
        return Message(
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            sms=self._sms(t, banks, links[0], subject, plain_subject),
            language=language,
            unsubscribe_url=one_click,
        )

    def _subjects(self, t: Mapping[str, Any], kind: MessageKind, notices: Sequence[EpisodeNotice]) -> tuple[str, str]:
        """The subject, and the same without the bank's name (for an SMS that must be short)."""
        notice = notices[0]
        if kind == MessageKind.DIGEST:
            subject = plain = t["subject_digest"].format(count=len(notices))
        else:
            plain = _for_action(t["subject_unnamed"], notice.action)
            named = notice.institution_name
            subject = _for_action(t["subject"], notice.action).format(bank=named) if named else plain
        if all(notice.next_message > 0 for notice in notices):
            return t["subject_reminder"].format(subject=subject), t["subject_reminder"].format(subject=plain)
        return subject, plain

    def _sms(self, t: Mapping[str, Any], banks: Sequence[str], link: str, subject: str, plain: str) -> str:
        """Which app it is from, the subject and the link (the email tells the whole story), in one segment where
        it can be: a digest names as many banks as fit, a long bank name gives way to the subject without it."""
        app = self.app_name
        if len(banks) == 1:
            return shortest_fit(
                [
                    t["sms"].format(app=app, subject=subject, link=link),
                    t["sms"].format(app=app, subject=plain, link=link),
                ]
            )
        candidates = []
        for shown in range(len(banks), 0, -1):
            named = ", ".join(banks[:shown])
            listed = t["sms_more"].format(banks=named, count=len(banks) - shown) if shown < len(banks) else named
            candidates.append(t["sms_digest"].format(app=app, subject=subject, banks=listed, link=link))
        return shortest_fit([*candidates, t["sms"].format(app=app, subject=subject, link=link)])
