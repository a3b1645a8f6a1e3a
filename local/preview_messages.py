"""`make preview-messages`: every kind of message, in every language, as the customer would get it.

Renders each kind (first notice, reminder, digest, link again, incident follow-up) in each language with realistic
data (one bank, a digest of several, a long bank name) through the same composer the notifier uses, with the
project's `messages/` templates over the defaults, and writes for each the HTML, the text, the SMS, and a screenshot
of the HTML in headless Chromium at a desktop and a phone width. Prints where they are and each SMS's segments.

    make preview-messages                                      # into .local/messages/
    make upload-messages BUCKET=<bucket> [PREFIX=<prefix/>]   # the same check, then the files to S3
    PYTHONPATH=layers/common:. .venv/bin/python -m local.preview_messages --help   # another folder, brand, logo

An upload is refused when any message falls back to the project's templates (the notifier would do the same at
send time, and count it).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connection_repair.adapters.templates import DirectoryTemplateSource
from connection_repair.domain.status_policy import Action
from connection_repair.messages.render import LANGUAGES, MessageRenderer
from connection_repair.messages.sms import encoding, segments
from connection_repair.notify.compose import MessageComposer, kind_of
from connection_repair.notify.records import EpisodeNotice, Message
from connection_repair.preferences.model import NotificationPreferences

ROOT = Path(__file__).resolve().parent.parent
OWN_TEMPLATES = ROOT / "messages"
RECONNECT_URL = "https://app.example.com/connections/{connectionId}/reconnect"
SETTINGS_URL = "https://app.example.com/settings/notifications"
SINCE = datetime(2026, 12, 3, 14, 5, tzinfo=UTC)
LONG_NAME = "First Community Federal Savings Bank of Northern California"
# A customer of each language, where they live.
CUSTOMERS = {
    "en": NotificationPreferences(locale="en-US", timezone="America/New_York"),
    "es": NotificationPreferences(locale="es-MX", timezone="America/Mexico_City"),
}


def notice(bank: str | None, number: int, **fields: object) -> EpisodeNotice:
    values: dict[str, object] = {
        "episode_id": f"episode-{number}",
        "connection_id": f"conn-{number}",
        "external_customer_id": "customer-1",
        "institution_id": f"ins-{number}",
        "institution_name": bank,
        "action": Action.REPAIR,
        "status": "RECONNECT_REQUIRED",
        "status_reason": "LOGIN_REQUIRED",
        "attention_since": SINCE - timedelta(hours=number),
    }
    return EpisodeNotice.model_validate(values | fields)


# Each kind with the data a product designer would check it with.
SAMPLES: dict[str, list[EpisodeNotice]] = {
    "first_notice": [notice("Chase", 1)],
    "first_notice-long_name": [notice(LONG_NAME, 1)],
    "reminder": [notice("Chase", 1, next_message=1, messages_sent=1)],
    "digest": [
        notice("Chase", 1),
        notice("Citi", 2, status="ACTIVE", status_reason="ACCESS_EXPIRING_SOON", action=Action.RENEW_ACCESS),
        notice(LONG_NAME, 3, status="DEGRADED", status_reason="INSTITUTION_ACTION_REQUIRED"),
    ],
    "link_again": [notice("Wells Fargo", 1, status="EXPIRED", status_reason=None, action=Action.START_NEW_CONNECTION)],
    "incident_follow_up": [notice("Chase", 1, held_by_incident=True)],
}


@dataclass(frozen=True)
class Preview:
    language: str
    name: str
    message: Message
    html: Path


def render_all(composer: MessageComposer, out: Path) -> list[Preview]:
    previews = []
    for language in LANGUAGES:
        folder = out / language
        folder.mkdir(parents=True, exist_ok=True)
        for name, notices in SAMPLES.items():
            message = composer.compose(notices, CUSTOMERS.get(language, NotificationPreferences(locale=language)))
            html = folder / f"{name}.html"
            html.write_text(message.html, encoding="utf-8")
            (folder / f"{name}.txt").write_text(f"Subject: {message.subject}\n\n{message.text}", encoding="utf-8")
            (folder / f"{name}.sms.txt").write_text(message.sms + "\n", encoding="utf-8")
            previews.append(Preview(language, name, message, html))
    return previews


def screenshot(previews: list[Preview], chromium: str) -> None:
    """Each preview's HTML in headless Chromium at a desktop and a phone width, as a PNG beside it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            for width, suffix in ((720, ""), (375, "-phone")):
                page = browser.new_page(viewport={"width": width, "height": 600})
                for preview in previews:
                    # Images a deployment links (its logo) are fetched; nothing else leaves the machine.
                    page.goto(preview.html.as_uri())
                    page.screenshot(path=str(preview.html.with_name(f"{preview.name}{suffix}.png")), full_page=True)
                page.close()
        finally:
            browser.close()


def upload(templates: Path, bucket: str, prefix: str, s3: Any) -> list[str]:
    """Every file of ``templates`` (but its README) to ``s3://bucket/prefix``, laid out as the notifier reads it."""
    keys = []
    for path in sorted(templates.rglob("*")):
        if path.is_file() and path.name != "README.md":
            key = prefix + path.relative_to(templates).as_posix()
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
            keys.append(key)
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / ".local" / "messages")
    parser.add_argument("--templates", type=Path, default=OWN_TEMPLATES, help="the deployment's own templates")
    parser.add_argument("--app-name", default="Budgetly")
    parser.add_argument("--logo-url", default=None)
    parser.add_argument("--brand-color", default="#1a56db")
    parser.add_argument("--no-screenshots", action="store_true")
    parser.add_argument("--upload-bucket", default=None, help="after the check, upload the templates here")
    parser.add_argument("--upload-prefix", default="")
    arguments = parser.parse_args()
    composer = MessageComposer(
        RECONNECT_URL,
        settings_url=SETTINGS_URL,
        app_name=arguments.app_name,
        logo_url=arguments.logo_url or None,
        brand_color=arguments.brand_color,
        renderer=MessageRenderer(DirectoryTemplateSource(arguments.templates)),
    )
    previews = render_all(composer, arguments.out)
    fallbacks = [p for p in previews if p.message.template_fallback]
    if not arguments.no_screenshots:
        screenshot(previews, os.environ.get("CHROMIUM") or "/usr/bin/chromium")
    for preview in previews:
        sms = preview.message.sms
        print(
            f"{preview.language}/{preview.name:24} {kind_of(SAMPLES[preview.name]).value:19} "
            f"SMS {len(sms):3} chars {encoding(sms)} {segments(sms)} segment(s)"
        )
    print(f"\nHTML, text, SMS{'' if arguments.no_screenshots else ' and screenshots'} in {arguments.out}")
    if fallbacks:
        names = ", ".join(f"{p.language}/{p.name}" for p in fallbacks)
        raise SystemExit(f"the templates in {arguments.templates} could not make {names}: the defaults were used")
    if arguments.upload_bucket:
        import boto3

        prefix = arguments.upload_prefix
        keys = upload(arguments.templates, arguments.upload_bucket, prefix, boto3.client("s3"))
        print(f"uploaded {len(keys)} file(s) to s3://{arguments.upload_bucket}/{prefix}")


if __name__ == "__main__":
    main()
