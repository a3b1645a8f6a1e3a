"""`make preview-messages` in real Chromium: every kind in every language as HTML, text, SMS and screenshots, and the
email as a customer's browser shows it (one button per connection to its deep link, nothing wider than a phone)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from connection_repair.messages.render import LANGUAGES
from local.preview_messages import ROOT, SAMPLES

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def previews(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The command `make preview-messages` runs, in its own process (its own Playwright and Chromium)
    out = tmp_path_factory.mktemp("messages")
    environment = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)])}
    command = [sys.executable, "-m", "local.preview_messages", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    assert f"in {out}" in done.stdout
    return out


def test_every_kind_in_every_language_is_written_and_photographed(previews: Path) -> None:
    for language in LANGUAGES:
        for name in SAMPLES:
            for suffix in (".html", ".txt", ".sms.txt"):
                assert (previews / language / f"{name}{suffix}").read_text(encoding="utf-8").strip()
            for shot in (f"{name}.png", f"{name}-phone.png"):
                image = (previews / language / shot).read_bytes()
                assert image.startswith(PNG)
                assert len(image) > 10_000  # a rendered email, not a blank page


def test_the_email_shows_one_button_per_connection_to_its_link_and_fits_a_phone(
    previews: Path, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 700})
    try:
        page.goto((previews / "es" / "digest.html").as_uri())
        buttons = page.get_by_role("link", name="Conectar Chase")
        assert buttons.count() == 1
        assert buttons.get_attribute("href") == "https://app.example.com/connections/conn-1/reconnect"
        assert page.get_by_role("link", name="Renovar el acceso a Citi").is_visible()
        assert page.get_by_role("link", name="Cambiar o dejar de recibir estos mensajes").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        assert page.evaluate("document.documentElement.lang") == "es"
    finally:
        page.close()
