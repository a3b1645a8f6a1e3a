"""One-click unsubscribe on moto: every email carries the customer's signed link (List-Unsubscribe and the visible
"stop" link); its page (the unsubscribe function) asks before changing anything; a POST (the page's button, or a mail
client's RFC 8058 one click) stops every message to that customer and nobody else's; a link not signed for them
changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from connection_repair.adapters.ses import SesEmailChannel
from connection_repair.notify.compose import MessageComposer
from connection_repair.preferences.model import Channel
from connection_repair.preferences.unsubscribe import unsubscribe_token
from connection_repair.wiring.unsubscribe import page_settings, preferences_store, unsubscribe_verifier
from functions.unsubscribe import app as unsubscribe_app
from local.apigw import http_api_event
from local.aws_resources import LocalResources
from tests.notifier_support import RECONNECT_URL, SETTINGS_URL, T0, Clock, attention, build_notifier, sent_emails
from tests.repair_api_support import CUSTOMER, OTHER_CUSTOMER, RepairApi, install_repair_api
from tests.support import LambdaContext, load_event

SECRET = "test-unsubscribe-secret"
LINK = "https://api.example.com/unsubscribe"


@pytest.fixture
def api(aws: LocalResources, monkeypatch: pytest.MonkeyPatch) -> Iterator[RepairApi]:
    monkeypatch.setenv("UNSUBSCRIBE_SECRET", SECRET)
    api = install_repair_api(aws.table_name, monkeypatch)  # sets TABLE_NAME too
    wiring = (page_settings, unsubscribe_verifier, preferences_store)
    for built in wiring:
        built.cache_clear()
    for customer in (CUSTOMER, OTHER_CUSTOMER):
        assert api.call("PUT", "/me/notifications", {"email": f"{customer}@example.com"}, sub=customer)[0] == 200
    yield api
    for built in wiring:
        built.cache_clear()


def visit(method: str, token: str | None, *, one_click: bool = False) -> dict[str, Any]:
    """The link followed as a browser or a mail client would: no sign-in."""
    headers = {"content-type": "application/x-www-form-urlencoded"} if one_click else {}
    event = http_api_event(
        method,
        "/unsubscribe",
        route_key=f"{method} /unsubscribe",
        headers=headers,
        body=b"List-Unsubscribe=One-Click" if one_click else None,
        query={"token": token} if token is not None else None,
    )
    answer: dict[str, Any] = unsubscribe_app.lambda_handler(event, LambdaContext())
    return answer


def opted_out(api: RepairApi, customer: str) -> bool:
    answer: bool = api.call("GET", "/me/notifications", sub=customer)[2]["optedOut"]
    return answer


def test_the_page_asks_first_and_changes_nothing(api: RepairApi) -> None:
    page = visit("GET", unsubscribe_token(SECRET, CUSTOMER))

    assert (page["statusCode"], page["headers"]["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert '<form method="post"' in page["body"]
    assert not opted_out(api, CUSTOMER)  # mail scanners open every link: a GET must not unsubscribe


@pytest.mark.parametrize("one_click", [True, False], ids=["mail-client-one-click", "the-pages-button"])
def test_a_post_stops_every_message_to_that_customer_only_and_keeps_the_rest(api: RepairApi, one_click: bool) -> None:
    answer = visit("POST", unsubscribe_token(SECRET, CUSTOMER), one_click=one_click)
    again = visit("POST", unsubscribe_token(SECRET, CUSTOMER), one_click=one_click)

    assert (answer["statusCode"], again["statusCode"]) == (200, 200)
    assert "no more messages" in answer["body"]
    assert opted_out(api, CUSTOMER)
    assert api.call("GET", "/me/notifications")[2]["email"] == f"{CUSTOMER}@example.com"
    assert not opted_out(api, OTHER_CUSTOMER)


@pytest.mark.parametrize(
    "token",
    [
        unsubscribe_token("another-secret", CUSTOMER),  # forged
        unsubscribe_token(SECRET, CUSTOMER)[:-2],  # cut short
        unsubscribe_token(SECRET, OTHER_CUSTOMER).split(".")[0]
        + "."
        + unsubscribe_token(SECRET, CUSTOMER).split(".")[1],
        "",
    ],
    ids=["forged", "cut-short", "swapped", "empty"],
)
def test_a_link_not_signed_for_the_customer_changes_nothing(api: RepairApi, token: str) -> None:
    for method in ("GET", "POST"):
        answer = visit(method, token)
        assert (answer["statusCode"], "does not work" in answer["body"]) == (404, True)
    assert not opted_out(api, CUSTOMER)
    assert not opted_out(api, OTHER_CUSTOMER)


def test_each_email_carries_its_customers_link_and_following_it_stops_the_reminders(
    api: RepairApi, aws: LocalResources
) -> None:
    composer = MessageComposer(
        RECONNECT_URL,
        settings_url=SETTINGS_URL,
        unsubscribe_link=lambda customer: f"{LINK}?token={unsubscribe_token(SECRET, customer)}",
    )
    rig = build_notifier(aws.table_name, Clock(), composer=composer)
    sent: list[dict[str, Any]] = []
    ses = boto3.client("sesv2")
    ses.meta.events.register("provide-client-params.sesv2.SendEmail", lambda params, **_: sent.append(params))
    rig.channels[Channel.EMAIL] = SesEmailChannel(ses, "notifications@app.example.com")
    rig.preferences(CUSTOMER, email="ada@example.com")
    rig.notifier.on_needs_attention(attention(rig.connection(customer=CUSTOMER)))
    rig.clock.at(T0 + timedelta(minutes=6))
    assert rig.notifier.sweep().messages_sent == 1

    [params] = sent
    headers = {header["Name"]: header["Value"] for header in params["Content"]["Simple"]["Headers"]}
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = headers["List-Unsubscribe"].strip("<>")
    assert link.startswith(LINK)
    body = params["Content"]["Simple"]["Body"]
    assert f"Stop these messages: {link}" in body["Text"]["Data"]
    assert f"Change how we reach you: {SETTINGS_URL}" in body["Text"]["Data"]
    assert link.replace("&", "&amp;") in body["Html"]["Data"] or link in body["Html"]["Data"]

    [token] = parse_qs(urlsplit(link).query)["token"]
    assert visit("POST", token, one_click=True)["statusCode"] == 200

    rig.clock.at(T0 + timedelta(days=1, minutes=6))
    reminder = rig.notifier.sweep()
    assert (reminder.messages_sent, reminder.suppressed["OPTED_OUT"]) == (0, 1)
    assert len(sent_emails()) == 1


@pytest.mark.parametrize("name", ["unsubscribe_page", "unsubscribe_one_click"])
def test_the_committed_events_are_answered_as_the_local_stack_would(
    name: str, aws: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # events/*.json are signed with the local stack's value of UnsubscribeSigningSecret
    monkeypatch.setenv("UNSUBSCRIBE_SECRET", "local-UnsubscribeSigningSecret")
    monkeypatch.setenv("TABLE_NAME", aws.table_name)
    for built in (page_settings, unsubscribe_verifier, preferences_store):
        built.cache_clear()

    answer = unsubscribe_app.lambda_handler(load_event(name), LambdaContext())

    assert answer["statusCode"] == 200
    stopped = preferences_store().get_preferences("customer-123")
    assert (stopped is not None and stopped.opted_out) == (name == "unsubscribe_one_click")
    for built in (page_settings, unsubscribe_verifier, preferences_store):
        built.cache_clear()
