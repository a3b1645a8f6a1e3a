"""Messages through the notifier on moto: the customer's language, a deployment's own templates on S3, and the
message that still goes out (with a metric) when those templates cannot make it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from connection_repair.adapters.templates import CACHE_SECONDS, S3TemplateSource
from connection_repair.messages.sms import segments
from connection_repair.notify.compose import MessageComposer
from connection_repair.platform.settings import NotifierSettings
from connection_repair.preferences.model import Channel
from connection_repair.wiring.notifier import composer as wired_composer
from functions.notifier import app
from local import preview_messages
from local.aws_resources import LocalResources
from local.make_notifier_events import BROKEN_AT
from tests.notifier_support import (
    RECONNECT_URL,
    SETTINGS_URL,
    T0,
    Clock,
    NotifierRig,
    attention,
    build_notifier,
    sent_emails,
    sent_sms,
)
from tests.support import LambdaContext, load_event

BUCKET = "budgetly-message-templates"
PREFIX = "messages/"


def upload(files: dict[str, str], prefix: str = PREFIX) -> None:
    s3 = boto3.client("s3")
    if BUCKET not in {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    for name, text in files.items():
        s3.put_object(Bucket=BUCKET, Key=prefix + name, Body=text.encode())


def settings(**environment: str) -> NotifierSettings:
    """The notifier's settings from its environment: the required variables and ``environment``."""
    required = {"TABLE_NAME": "t", "EVENT_BUS_NAME": "b", "APP_RECONNECT_URL": RECONNECT_URL}
    return NotifierSettings.from_env(required | {"APP_NOTIFICATION_SETTINGS_URL": SETTINGS_URL} | environment)


def own_composer() -> MessageComposer:
    """The composer as the wiring builds it for a deployment whose templates are in BUCKET/PREFIX."""
    return wired_composer(
        settings(NOTIFY_APP_NAME="Budgetly", NOTIFY_TEMPLATES_BUCKET=BUCKET, NOTIFY_TEMPLATES_PREFIX=PREFIX)
    )


def first_message(rig: NotifierRig) -> None:
    rig.notifier.on_needs_attention(attention(rig.connection()))
    rig.clock.at(T0 + timedelta(minutes=6))
    assert rig.notifier.sweep().messages_sent == 1


def test_a_spanish_speaking_customer_gets_email_and_sms_in_spanish(aws: LocalResources) -> None:
    rig = build_notifier(aws.table_name, Clock())
    rig.preferences(
        locale="es-MX", timezone="America/Mexico_City", phone="+14155550123", channels=(Channel.EMAIL, Channel.SMS)
    )
    first_message(rig)
    [email] = sent_emails()
    assert email.subject == "Vuelve a conectar tu cuenta de Chase"
    assert '<html lang="es">' in email.body
    # 11:30 UTC is 5:30 in Mexico City
    assert "Necesita tu atención desde el 25 nov 2026, 5:30\u202fa.m." in email.body
    [(phone, sms)] = sent_sms()
    assert sms == "Budgetly: Vuelve a conectar tu cuenta de Chase: https://app.example.com/connections/conn-1/reconnect"
    assert (phone, segments(sms)) == ("+14155550123", 1)


def test_the_deployments_templates_on_s3_change_the_message_and_the_rest_stays_the_projects(
    aws: LocalResources,
) -> None:
    upload({"first_notice.subject": "{{ app.name }}: {{ notices[0].bank }} needs you", "locales/en.json": "{}"})
    rig = build_notifier(aws.table_name, Clock(), composer=own_composer())
    rig.preferences()
    first_message(rig)
    rig.clock.at(T0 + timedelta(days=1, minutes=6))
    assert rig.notifier.sweep().messages_sent == 1
    assert [email.subject for email in sent_emails()] == [
        "Budgetly: Chase needs you",
        "Reminder: Reconnect your Chase account",
    ]


def test_a_broken_template_on_s3_still_sends_the_projects_message_and_counts_it(
    notifier_env: LocalResources, monkeypatch: pytest.MonkeyPatch, captured_logs: Callable[[], str]
) -> None:
    upload({"first_notice.html": "<p>{{ notices[0].bank }}</p>"})  # no link to the app, no way to stop the messages
    rig = build_notifier(notifier_env.table_name, Clock(BROKEN_AT), composer=own_composer())
    monkeypatch.setattr(app, "notifier", lambda: rig.notifier)
    rig.preferences("customer-123")
    rig.connection("WQ5RitxnrnggqcT8noLoZN", customer="customer-123", episode_id="episode-1", since=BROKEN_AT)
    rig.notifier.on_needs_attention(attention(rig.connection("WQ5RitxnrnggqcT8noLoZN", customer="customer-123")))
    rig.clock.at(BROKEN_AT + timedelta(minutes=6))

    assert app.lambda_handler(load_event("notifier_reminder_sweep"), LambdaContext())["sent"] == 1

    [email] = sent_emails()
    assert 'href="https://app.example.com/connections/WQ5RitxnrnggqcT8noLoZN/reconnect"' in email.body
    assert f'href="{SETTINGS_URL}"' in email.body
    logs = captured_logs()
    metrics = [json.loads(line) for line in logs.splitlines() if line.startswith("{") and '"_aws"' in line]
    assert [line["MessageTemplateFallbacks"] for line in metrics if "MessageTemplateFallbacks" in line] == [[1.0]]
    assert "The deployment's message template failed" in logs


def test_s3_templates_are_read_once_and_again_after_the_cache_time(aws: LocalResources) -> None:
    upload({"first_notice.subject": "one"})
    now = [0.0]
    source = S3TemplateSource(boto3.client("s3"), BUCKET, "messages", clock=lambda: now[0])
    assert (source.read("first_notice.subject"), source.read("reminder.subject")) == ("one", None)
    upload({"first_notice.subject": "two"})
    now[0] = CACHE_SECONDS - 1
    assert source.read("first_notice.subject") == "one"
    now[0] = CACHE_SECONDS
    assert source.read("first_notice.subject") == "two"


def test_an_unreadable_bucket_is_raised_and_not_asked_again_before_the_cache_time(aws: LocalResources) -> None:
    now = [0.0]
    calls: list[str] = []
    s3 = boto3.client("s3")
    s3.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: calls.append("list"))
    source = S3TemplateSource(s3, "no-such-bucket", "", clock=lambda: now[0])
    for _ in range(3):
        with pytest.raises(Exception, match="NoSuchBucket"):
            source.read("first_notice.html")
    assert calls == ["list"]
    upload({"first_notice.html": "mine"}, prefix="")
    source = S3TemplateSource(s3, BUCKET, "", clock=lambda: now[0])
    assert source.read("first_notice.html") == "mine"


def test_without_a_bucket_the_wiring_sends_the_projects_messages() -> None:
    composer = wired_composer(
        settings(NOTIFY_TEMPLATES_BUCKET="", APP_BRAND_COLOR="#0f766e", NOTIFY_DEFAULT_LOCALE="es")
    )
    assert not composer.renderer.has_own
    assert (composer.brand_color, composer.default_locale, composer.settings_url) == ("#0f766e", "es", SETTINGS_URL)
    for bad in ({"APP_BRAND_COLOR": "blue"}, {"APP_LOGO_URL": "http://insecure.example.com/logo.png"}):
        with pytest.raises(ValueError, match=r"APP_BRAND_COLOR|APP_LOGO_URL"):
            settings(**bad)


def test_the_preview_checks_then_uploads_the_templates_to_s3(
    aws: LocalResources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    own = tmp_path / "messages"
    (own / "es").mkdir(parents=True)
    (own / "README.md").write_text("notes")
    (own / "es" / "first_notice.subject").write_text("{{ notices[0].bank }}: te necesitamos")
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    arguments = ["--templates", str(own), "--out", str(tmp_path / "out"), "--no-screenshots"]
    monkeypatch.setattr("sys.argv", ["preview", *arguments, "--upload-bucket", BUCKET, "--upload-prefix", PREFIX])
    preview_messages.main()
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]
    assert [entry["Key"] for entry in listed] == ["messages/es/first_notice.subject"]
    assert "es/first_notice" in capsys.readouterr().out
    assert (tmp_path / "out" / "es" / "first_notice.txt").read_text().startswith("Subject: Chase: te necesitamos\n")
    # A template that cannot make its message is refused before anything is uploaded
    (own / "reminder.txt").write_text("{{ nothing }}")
    with pytest.raises(SystemExit, match=r"could not make en/reminder, es/reminder: the defaults were used"):
        preview_messages.main()
    assert len(boto3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]) == 1
