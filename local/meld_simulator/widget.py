"""The stand-in for Meld's widget: one page whose button plays the customer logging in at the bank."""

from __future__ import annotations

import json
from html import escape

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}"
    "button{font-size:1rem;padding:.6rem 1.2rem;margin:.3rem .3rem 0 0;cursor:pointer}"
    "pre{background:#f3f4f6;padding:.8rem;white-space:pre-wrap;word-break:break-all}"
    ".note{color:#57606a;font-size:.9rem}"
)

_SCRIPT = """
async function complete(outcome) {
  for (const button of document.querySelectorAll("button")) button.disabled = true;
  const result = document.getElementById("result");
  result.textContent = "Connecting...";
  try {
    const response = await fetch("/_sim/widget/complete", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({connectToken: TOKEN, outcome: outcome}),
    });
    const body = await response.json();
    const reason = body.statusReason ? " (" + body.statusReason + ")" : "";
    const summary = response.ok ? "Done: " + body.status + reason : "Failed: " + body.message;
    result.textContent = summary + "\\n\\n" + JSON.stringify(body, null, 2);
  } catch (error) {
    result.textContent = "Failed: " + error;
  }
}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _script_literal(value: str) -> str:
    # JSON is valid JavaScript; "<" escaped so the value cannot close the <script> element.
    return json.dumps(value).replace("<", "\\u003c")


def render_widget(*, token: str, institution_name: str, purpose: str) -> str:
    name = escape(institution_name)
    heading = "Reconnect your account" if purpose == "repair" else "Connect your account"
    fail_button = (
        '<button type="button" onclick="complete(\'FAIL\')">Simulate a provider failure</button>'
        if purpose == "repair"
        else ""
    )
    body = (
        f"<h1>{heading}</h1><h2>{name}</h2>"
        f'<p class="note">Meld simulator: no real credentials are needed.</p>'
        f'<button type="button" onclick="complete(\'SUCCESS\')">Log in to {name}</button>{fail_button}'
        '<pre id="result" aria-live="polite"></pre>'
        f"<script>const TOKEN = {_script_literal(token)};{_SCRIPT}</script>"
    )
    return _page(f"Log in to {institution_name}", body)


def render_error(message: str) -> str:
    return _page("Link unavailable", f"<h1>This link cannot be used</h1><p>{escape(message)}</p>")
