"""The simulator's widget in a real browser: framed or opened by an app's page, it tells that page what happened,
with Meld's widget events, and tells no page of another origin anything."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page

from local.meld_simulator import MeldSimulator, SimulatorConfig

# An app's page: frames the widget (or opens it, ?mode=popup) and keeps every message it hears.
HOST_PAGE = b"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>host</title></head><body><script>
window.received = [];
addEventListener("message", (event) => received.push({origin: event.origin, data: event.data}));
const query = new URLSearchParams(location.search);
if (query.get("mode") === "popup") {
  const button = document.createElement("button");
  button.textContent = "Open the widget";
  button.onclick = () => { window.open(query.get("src"), "widget"); };
  document.body.append(button);
} else {
  const frame = document.createElement("iframe");
  frame.src = query.get("src");
  frame.width = 360;
  frame.height = 640;
  frame.onload = () => { window.frameLoaded = true; };
  document.body.append(frame);
}
</script></body></html>"""


class _Host(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(HOST_PAGE)))
        self.end_headers()
        self.wfile.write(HOST_PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Host)
    Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def origins() -> Iterator[tuple[str, str]]:
    """Two app origins: the first is configured for the widget, the second is not."""
    allowed, allowed_url = _serve()
    other, other_url = _serve()
    try:
        yield allowed_url, other_url
    finally:
        for server in (allowed, other):
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def meld(origins: tuple[str, str]) -> Iterator[MeldSimulator]:
    # Webhooks go nowhere here (an unused port, no retries): only the widget is under test.
    config = SimulatorConfig(port=0, widget_origins=(origins[0],), webhook_url="http://127.0.0.1:9/", retry_delays=())
    simulator = MeldSimulator(config).start()
    try:
        yield simulator
    finally:
        simulator.stop()


def _repair_url(meld: MeldSimulator) -> str:
    created = meld.backend.sim_create(
        {"externalCustomerId": "customer-1", "institutionName": "Chase", "status": "RECONNECT_REQUIRED"}
    )
    url: str = meld.backend.repair({"connectionId": created["id"]})["widgetUrl"]
    return url


def _messages(page: Page, count: int) -> list[dict[str, Any]]:
    page.wait_for_function(f"window.received.length >= {count}")
    received: list[dict[str, Any]] = page.evaluate("window.received")
    return received


def test_a_framed_widget_says_init_then_connect_complete_to_its_app(
    browser: Browser, meld: MeldSimulator, origins: tuple[str, str]
) -> None:
    page = browser.new_page()
    page.goto(f"{origins[0]}/?src={quote(_repair_url(meld))}")
    assert [m["data"] for m in _messages(page, 1)] == [{"domain": "meld-connect", "eventName": "init"}]
    page.frame_locator("iframe").get_by_role("button", name="Log in to Chase").click()
    init, complete = _messages(page, 2)
    assert init["origin"] == complete["origin"] == meld.base_url
    assert complete["data"] == {
        "domain": "meld-connect",
        "eventName": "connect_complete",
        "institutionId": complete["data"]["institutionId"],
        "institutionName": "Chase",
        "accountCount": 1,
        "accounts": [{"name": "Everyday Checking", "type": "CHECKING", "mask": "4321"}],
    }
    assert complete["data"]["institutionId"]
    page.close()


def test_a_failed_login_is_an_error_with_its_reason(
    browser: Browser, meld: MeldSimulator, origins: tuple[str, str]
) -> None:
    page = browser.new_page()
    page.goto(f"{origins[0]}/?src={quote(_repair_url(meld))}")
    _messages(page, 1)
    page.frame_locator("iframe").get_by_role("button", name="Simulate a provider failure").click()
    error = _messages(page, 2)[1]["data"]
    assert (error["eventName"], error["reason"]) == ("error", "REPAIRING_INSTITUTION")
    assert error["details"]
    page.close()


def test_a_link_the_widget_refuses_is_an_error_too(
    browser: Browser, meld: MeldSimulator, origins: tuple[str, str]
) -> None:
    page = browser.new_page()
    page.goto(f"{origins[0]}/?src={quote(meld.base_url + '/widget?connectToken=a.b.c')}")
    [error] = _messages(page, 1)
    assert (error["data"]["eventName"], error["data"]["domain"]) == ("error", "meld-connect")
    page.close()


def test_an_opened_widget_speaks_to_the_page_that_opened_it(
    browser: Browser, meld: MeldSimulator, origins: tuple[str, str]
) -> None:
    page = browser.new_page()
    page.goto(f"{origins[0]}/?mode=popup&src={quote(_repair_url(meld))}")
    with page.expect_popup() as opened:
        page.get_by_role("button", name="Open the widget").click()
    popup = opened.value
    assert _messages(page, 1)[0]["data"]["eventName"] == "init"
    popup.get_by_role("button", name="Log in to Chase").click()
    assert _messages(page, 2)[1]["data"]["eventName"] == "connect_complete"
    page.close()


def test_a_page_of_another_origin_can_neither_frame_it_nor_hear_it(
    browser: Browser, meld: MeldSimulator, origins: tuple[str, str]
) -> None:
    framed = browser.new_page()
    framed.goto(f"{origins[1]}/?src={quote(_repair_url(meld))}")
    framed.wait_for_function("window.frameLoaded === true")
    # The browser refused to render it (frame-ancestors): no widget, no button to press.
    assert framed.frame_locator("iframe").get_by_role("button").count() == 0

    opener = browser.new_page()
    opener.goto(f"{origins[1]}/?mode=popup&src={quote(_repair_url(meld))}")
    with opener.expect_popup() as opened:
        opener.get_by_role("button", name="Open the widget").click()
    popup = opened.value
    popup.get_by_role("button", name="Log in to Chase").click()
    popup.get_by_text("Done: ACTIVE").wait_for()
    assert framed.evaluate("window.received") == opener.evaluate("window.received") == []
    framed.close()
    opener.close()
