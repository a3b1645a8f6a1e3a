"""The messages a customer gets: every kind in every language, a deployment's own templates over the project's, and
what happens when those cannot make a message."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connection_repair.adapters.templates import DirectoryTemplateSource
from connection_repair.domain.status_policy import Action
from connection_repair.messages.render import LANGUAGES, MessageRenderer
from connection_repair.messages.sms import SINGLE, encoding, length, segments
from connection_repair.notify.compose import MessageComposer, kind_of
from connection_repair.notify.records import EpisodeNotice, Message
from connection_repair.preferences.model import NotificationPreferences
from local.preview_messages import CUSTOMERS, LONG_NAME, SAMPLES, notice

ROOT = Path(__file__).resolve().parents[3]
RECONNECT = "https://app.example.com/connections/{connectionId}/reconnect"
SETTINGS = "https://app.example.com/settings/notifications"
COMPOSER = MessageComposer(RECONNECT, settings_url=SETTINGS, app_name="Budgetly")
SPANISH = NotificationPreferences(locale="es-MX", timezone="America/Mexico_City")


def own(tmp_path: Path, files: dict[str, str], **fields: object) -> MessageComposer:
    """A composer with a deployment's own templates (``files``, laid out as its S3 prefix) over the project's."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    values: dict[str, object] = {"settings_url": SETTINGS, "app_name": "Budgetly"} | fields
    return MessageComposer(RECONNECT, renderer=MessageRenderer(DirectoryTemplateSource(tmp_path)), **values)  # type: ignore[arg-type]


def link(notice_: EpisodeNotice) -> str:
    return f"https://app.example.com/connections/{notice_.connection_id}/reconnect"


def assert_complete(message: Message, notices: list[EpisodeNotice]) -> None:
    """What a customer must see: every bank, every button's link, the link that stops the messages; no token."""
    for each in notices:
        bank = each.institution_name or ""
        assert bank in message.text
        assert bank.replace("&", "&amp;") in message.html
        assert link(each) in message.text
        assert f'href="{link(each)}"' in message.html
    assert f"{SETTINGS}" in message.text
    assert f'href="{SETTINGS}"' in message.html
    for part in (message.subject, message.text, message.html, message.sms):
        assert not re.search(r"token|secret|api[-_ ]?key", part, re.IGNORECASE)
    assert message.sms.startswith("Budgetly: ")
    assert link(notices[0]) in message.sms


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("sample", list(SAMPLES))
def test_every_kind_in_every_language_shows_what_the_customer_must_see(language: str, sample: str) -> None:
    notices = SAMPLES[sample]
    message = COMPOSER.compose(notices, CUSTOMERS[language])
    assert (message.language, message.template_fallback) == (language, False)
    assert_complete(message, notices)
    assert f'<html lang="{language}">' in message.html
    assert message.html.count('<a href="https://app.example.com/connections/') == len(notices)  # one button each


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_projects_own_templates_make_every_message_without_falling_back(language: str) -> None:
    # The deployment's templates kept in messages/ (uploaded by `make upload-messages`): refused here before a deploy.
    composer = MessageComposer(
        RECONNECT,
        settings_url=SETTINGS,
        app_name="Budgetly",
        renderer=MessageRenderer(DirectoryTemplateSource(ROOT / "messages")),
    )
    for notices in SAMPLES.values():
        message = composer.compose(notices, CUSTOMERS[language])
        assert not message.template_fallback
        assert_complete(message, notices)


def test_each_kind_is_chosen_by_what_the_notices_are() -> None:
    assert {name: kind_of(notices).value for name, notices in SAMPLES.items()} == {
        "first_notice": "first_notice",
        "first_notice-long_name": "first_notice",
        "reminder": "reminder",
        "digest": "digest",
        "link_again": "link_again",
        "incident_follow_up": "incident_follow_up",
    }
    # "Link again" stays itself as a reminder; a held message that is a reminder is a reminder.
    again = SAMPLES["link_again"][0].model_copy(update={"next_message": 1})
    assert kind_of([again]).value == "link_again"
    assert kind_of([SAMPLES["incident_follow_up"][0].model_copy(update={"next_message": 1})]).value == "reminder"


def test_the_first_message_word_for_word() -> None:
    message = COMPOSER.compose(SAMPLES["first_notice"], CUSTOMERS["en"])
    assert message.subject == "Reconnect your Chase account"
    assert message.text == "\n".join(
        [
            "Hello,",
            "",
            "Your connection to Chase needs your attention.",
            "",
            "We can no longer update your data from Chase: the bank needs you to sign in again.",
            "Reconnect Chase in the app; it takes about a minute.",
            "Reconnect Chase: https://app.example.com/connections/conn-1/reconnect",
            "Needs your attention since Dec 3, 2026, 8:05\u202fAM",
            "",
            "--",
            "You receive this because you connected a bank to Budgetly.",
            f"Change or stop these messages: {SETTINGS}",
            "",
        ]
    )
    assert message.sms == "Budgetly: Reconnect your Chase account: https://app.example.com/connections/conn-1/reconnect"


def test_with_a_one_click_link_the_footer_stops_the_messages_and_links_the_apps_settings_in_each_language() -> None:
    link = "https://api.example.com/unsubscribe?token=abc.def"
    composer = MessageComposer(RECONNECT, settings_url=SETTINGS, app_name="Budgetly", unsubscribe_link=lambda _: link)

    english = composer.compose(SAMPLES["first_notice"], CUSTOMERS["en"])
    spanish = composer.compose(SAMPLES["reminder"], SPANISH)

    assert english.text.endswith(f"Stop these messages: {link}\nChange how we reach you: {SETTINGS}\n")
    assert f'<a href="{link}"' in english.html
    assert f'<a href="{SETTINGS}"' in english.html
    assert "Change or stop these messages" not in english.text + english.html
    assert f"Dejar de recibir estos mensajes: {link}\nCambiar cómo te avisamos: {SETTINGS}\n" in spanish.text
    assert english.unsubscribe_url == link


def test_spanish_words_dates_in_the_customers_zone_and_a_reminder_subject() -> None:
    message = COMPOSER.compose(SAMPLES["reminder"], SPANISH)
    assert message.subject == "Recordatorio: Vuelve a conectar tu cuenta de Chase"
    assert "Te lo recordamos: tu conexión con Chase todavía necesita tu atención." in message.text
    # 13:05 UTC is 7:05 in Mexico City, written the Mexican way
    assert "Necesita tu atención desde el 3 dic 2026, 7:05\u202fa.m." in message.text
    assert "Recibes este mensaje porque conectaste un banco a Budgetly." in message.html


def test_a_language_is_the_customers_tag_or_its_language_else_the_apps_default_else_english() -> None:
    spanish_app = MessageComposer(RECONNECT, settings_url=SETTINGS, default_locale="es")
    chase = SAMPLES["first_notice"]
    assert COMPOSER.compose(chase, NotificationPreferences(locale="es-ES")).language == "es"
    assert COMPOSER.compose(chase, NotificationPreferences(locale="fr")).language == "en"
    assert spanish_app.compose(chase, NotificationPreferences(locale="fr")).language == "es"
    assert spanish_app.compose(chase, NotificationPreferences()).language == "es"
    assert spanish_app.compose(chase).language == "es"
    assert MessageComposer(RECONNECT, settings_url=SETTINGS, default_locale="de").compose(chase).language == "en"


def test_reminders_digests_and_words_for_each_status() -> None:
    digest = COMPOSER.compose(SAMPLES["digest"])
    assert digest.subject == "3 bank connections need your attention"
    assert "Your permission to share data from Citi expires soon." in digest.text
    assert "Renew access to Citi" in digest.html
    assert "needs you to do something on its website or app" in digest.text
    reminders = [n.model_copy(update={"next_message": 1}) for n in SAMPLES["digest"]]
    assert COMPOSER.compose(reminders).subject == "Reminder: 3 bank connections need your attention"
    nameless = notice(None, 1)
    message = COMPOSER.compose([nameless])
    assert message.subject == "Reconnect your bank account"
    assert "We can no longer update your data from your bank" in message.text
    unknown_reason = notice("Chase", 1, status="UNRECOVERABLE", status_reason="SOMETHING_NEW")
    assert "Updates from Chase have kept failing" in COMPOSER.compose([unknown_reason]).text
    waiting = notice("Chase", 1, action=Action.WAIT)  # no words of its own: read as a repair
    assert COMPOSER.compose([waiting]).subject == "Reconnect your Chase account"
    failed = notice("Chase", 1, action=Action.START_NEW_CONNECTION)
    assert "Reconnecting Chase has not worked" in COMPOSER.compose([failed]).text


def test_names_from_the_bank_are_escaped_in_html_and_ids_quoted_in_links() -> None:
    odd = notice("<script>Bank & Co</script>", 1, connection_id="a/b?c")
    message = COMPOSER.compose([odd])
    assert "<script>" not in message.html
    assert "&lt;script&gt;Bank &amp; Co" in message.html
    assert "https://app.example.com/connections/a%2Fb%3Fc/reconnect" in message.text
    composer = MessageComposer("https://app.example.com/c/{connectionId}?from='mail'", settings_url=SETTINGS)
    quoted = composer.compose([notice("Chase", 1, connection_id="a/b")])
    assert "https://app.example.com/c/a%2Fb?from='mail'" in quoted.text
    assert 'href="https://app.example.com/c/a%2Fb?from=&#39;mail&#39;"' in quoted.html


def test_nothing_to_compose_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^nothing to compose$"):
        COMPOSER.compose([])


def test_the_brand_name_logo_and_colour_are_the_apps() -> None:
    composer = MessageComposer(
        RECONNECT,
        settings_url=SETTINGS,
        app_name="Budgetly",
        logo_url="https://cdn.example.com/logo.png",
        brand_color="#0f766e",
    )
    html = composer.compose(SAMPLES["first_notice"]).html
    assert '<img src="https://cdn.example.com/logo.png" alt="Budgetly"' in html
    assert "background-color:#0f766e" in html
    assert ">Budgetly</p>" not in html  # the logo stands for the name
    assert ">Budgetly</p>" in COMPOSER.compose(SAMPLES["first_notice"]).html


# --- SMS ---


def test_sms_length_counts_gsm7_septets_and_ucs2_units() -> None:
    assert (encoding("Hola, ¿qué tal? ñ ü é"), length("Hola, ¿qué tal? ñ ü é")) == ("GSM-7", 21)
    assert (encoding("a€[b"), length("a€[b")) == ("GSM-7", 6)  # the extension table takes two septets
    assert (encoding("Banco Itaú"), length("Banco Itaú")) == ("UCS-2", 10)
    assert length("👍") == 2  # UTF-16 surrogate pair
    assert [segments("a" * n) for n in (160, 161, 306, 307)] == [1, 2, 2, 3]
    assert [segments("á" * n) for n in (70, 71, 134, 135)] == [1, 2, 2, 3]
    assert SINGLE == {"GSM-7": 160, "UCS-2": 70}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_shipped_sms_is_one_segment(language: str) -> None:
    for notices in SAMPLES.values():
        sms = COMPOSER.compose(notices, CUSTOMERS[language]).sms
        assert segments(sms) == 1, sms


def test_a_bank_name_outside_gsm7_gives_way_to_keep_the_sms_one_segment() -> None:
    sms = COMPOSER.compose([notice("Banco Itaú", 1)], SPANISH).sms
    assert sms == "Budgetly: Vuelve a conectar tu cuenta bancaria: https://app.example.com/connections/conn-1/reconnect"
    assert (encoding(sms), segments(sms)) == ("GSM-7", 1)
    reminder = COMPOSER.compose([notice("Banco Itaú", 1, next_message=1)], SPANISH).sms
    assert reminder == (
        "Budgetly: Recordatorio: Vuelve a conectar tu cuenta bancaria: "
        "https://app.example.com/connections/conn-1/reconnect"
    )


def test_an_sms_digest_names_as_many_banks_as_fit_one_segment() -> None:
    notices = [notice(f"Bank number {n}", n) for n in range(1, 9)]
    sms = COMPOSER.compose(notices).sms
    assert len(sms) <= 160
    assert sms.startswith("Budgetly: 8 bank connections need your attention (Bank number 1, ")
    shown = sms.count("Bank number")
    assert sms.endswith(f" and {8 - shown} more). https://app.example.com/connections/conn-1/reconnect")
    both = COMPOSER.compose([notice("Chase", 1), notice("Citi", 2)]).sms
    assert both == (
        "Budgetly: 2 bank connections need your attention (Chase, Citi). "
        "https://app.example.com/connections/conn-1/reconnect"
    )
    one_fits = COMPOSER.compose([notice("Chase", 1), notice(LONG_NAME, 2)]).sms
    assert one_fits == (
        "Budgetly: 2 bank connections need your attention (Chase and 1 more). "
        "https://app.example.com/connections/conn-1/reconnect"
    )
    long_first = COMPOSER.compose([notice(LONG_NAME * 2, 1), notice("Citi", 2)]).sms
    assert long_first == (
        "Budgetly: 2 bank connections need your attention: https://app.example.com/connections/conn-1/reconnect"
    )


# --- a deployment's own templates ---


def test_an_override_replaces_only_its_kind_and_a_language_folder_only_its_language(tmp_path: Path) -> None:
    composer = own(
        tmp_path,
        {
            "first_notice.subject": "{{ notices[0].bank }}: action needed",
            "es/first_notice.subject": "{{ notices[0].bank }}: acción necesaria",
        },
    )
    assert composer.compose(SAMPLES["first_notice"]).subject == "Chase: action needed"
    assert composer.compose(SAMPLES["first_notice"], SPANISH).subject == "Chase: acción necesaria"
    assert composer.compose(SAMPLES["reminder"]).subject == "Reminder: Reconnect your Chase account"


def test_own_templates_get_every_value_the_context_promises(tmp_path: Path) -> None:
    # docs/messages.md lists what a template is given; a deployment's template may use any of it
    composer = own(
        tmp_path,
        {
            "digest.subject": "{{ kind }}/{{ lang }}: {{ notices | map(attribute='action') | join(',') }}",
            "locales/en.json": '{"intro": {"digest": "{count} connections, starting with {bank}"}}',
        },
    )
    message = composer.compose(SAMPLES["digest"])
    assert message.subject == "digest/en: REPAIR,RENEW_ACCESS,REPAIR"
    assert "3 connections, starting with Chase" in message.text


def test_own_phrases_merge_over_the_shipped_ones_and_own_languages_fall_back_to_english(tmp_path: Path) -> None:
    composer = own(
        tmp_path,
        {
            "locales/es.json": '{"greeting": "¡Hola!", "button": {"REPAIR": "Reconectar {bank}"}}',
            "locales/fr.json": '{"greeting": "Bonjour,", "subject": {"REPAIR": "Reconnectez votre compte {bank}"}}',
        },
    )
    spanish = composer.compose(SAMPLES["first_notice"], SPANISH)
    assert spanish.text.startswith("¡Hola!\n")
    assert "Reconectar Chase: https://" in spanish.text
    assert "Vuelve a conectar Chase en la app" in spanish.text  # a key not overridden
    french = composer.compose(SAMPLES["first_notice"], NotificationPreferences(locale="fr-CA"))
    assert (french.language, french.subject) == ("fr", "Reconnectez votre compte Chase")
    assert french.text.startswith("Bonjour,\n\nYour connection to Chase")  # what fr.json lacks is English
    assert not french.template_fallback


def test_a_regional_catalog_of_a_deployment_changes_only_its_keys(tmp_path: Path) -> None:
    composer = own(
        tmp_path,
        {
            "locales/es-MX.json": '{"greeting": "¡Qué tal!"}',
            "es/first_notice.subject": "{{ notices[0].bank }}: atención",
        },
    )
    mexican = composer.compose(SAMPLES["first_notice"], SPANISH)
    assert (mexican.language, mexican.subject) == ("es-MX", "Chase: atención")  # es/ serves es-MX too
    assert mexican.text.startswith("¡Qué tal!\n\nTu conexión con Chase necesita tu atención.")
    spain = composer.compose(SAMPLES["first_notice"], NotificationPreferences(locale="es-ES"))
    assert spain.text.startswith("Hola:\n")


BROKEN = {
    "a syntax error": {"first_notice.html": "{% if %}"},
    "a misspelt placeholder": {"first_notice.txt": "{{ t.greeting }} {{ notice.bnak }}"},
    "no link to the app": {"first_notice.txt": "{{ t.greeting }} {{ notices[0].bank }} " + SETTINGS},
    "no way to stop the messages": {
        "layout.html": "<html>{% block content %}{% endblock %}</html>",
    },
    "a subject of two lines": {"first_notice.subject": "Chase\nneeds you"},
    "phrases that are not JSON": {"locales/en.json": "{greeting: Hi"},
    "a phrase with an unknown placeholder": {"locales/en.json": '{"intro": {"first_notice": "{bnak} needs you"}}'},
    "a template reaching outside the sandbox": {"first_notice.subject": "{{ ''.__class__.__mro__ }}"},
}


@pytest.mark.parametrize("problem", list(BROKEN))
def test_a_broken_own_template_falls_back_to_the_projects_and_says_so(tmp_path: Path, problem: str) -> None:
    message = own(tmp_path, BROKEN[problem]).compose(SAMPLES["first_notice"])
    assert message.template_fallback
    assert message == Message(**(COMPOSER.compose(SAMPLES["first_notice"]).__dict__ | {"template_fallback": True}))


def test_a_source_that_cannot_be_read_falls_back_too() -> None:
    class Unreachable:
        def read(self, name: str) -> str | None:
            raise ConnectionError("S3 is unavailable")

    composer = MessageComposer(
        RECONNECT, settings_url=SETTINGS, app_name="Budgetly", renderer=MessageRenderer(Unreachable())
    )
    message = composer.compose(SAMPLES["digest"], SPANISH)
    assert (message.template_fallback, message.language) == (True, "es")
    assert_complete(message, SAMPLES["digest"])


def test_the_directory_source_reads_only_inside_its_directory(tmp_path: Path) -> None:
    (tmp_path / "inside.txt").write_text("yes")
    (tmp_path.parent / "outside.txt").write_text("no")
    source = DirectoryTemplateSource(tmp_path)
    assert source.read("inside.txt") == "yes"
    assert source.read("../outside.txt") is None
    assert source.read("missing.html") is None


def test_when_the_moment_is_written_it_is_in_the_customers_zone() -> None:
    berlin = NotificationPreferences(timezone="Europe/Berlin", locale="en-GB")
    at = datetime(2026, 12, 3, 23, 30, tzinfo=UTC)
    message = COMPOSER.compose([notice("Chase", 1, attention_since=at)], berlin)
    assert "Needs your attention since 4 Dec 2026, 00:30" in message.text
