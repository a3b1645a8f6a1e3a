"""The stand-in for Meld's widget: one page whose button plays the customer logging in at the bank.

Framed by (or opened from) an app's page of a configured origin, it posts Meld's widget events to that page, as
Meld's widget does: ``{domain: "meld-connect", eventName: "init"}`` once loaded, ``connect_complete`` (institution,
accounts) after a successful login, ``error`` (``reason``, ``details``) after a failed one. Messages are posted
with each configured origin as the target origin, so a page of any other origin never receives them.
"""

from __future__ import annotations

import json
from html import escape

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}"
    "button{font-size:1rem;padding:.6rem 1.2rem;margin:.3rem .3rem 0 0;cursor:pointer}"
    "pre{background:#f3f4f6;padding:.8rem;white-space:pre-wrap;word-break:break-all}"
    ".note{color:#57606a;font-size:.9rem}"
)

# The page that framed or opened this one hears the widget's events, if its origin is one of ORIGINS.
_EMIT = """
const HOST = window.parent !== window ? window.parent : window.opener;
function emit(eventName, data) {
  if (!HOST) return;
  for (const origin of ORIGINS) HOST.postMessage({domain: "meld-connect", eventName, ...data}, origin);
}
"""

_SCRIPT = (
    _EMIT
    + """
emit("init", {});
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
    if (response.ok && outcome === "SUCCESS") {
      emit("connect_complete", {
        institutionId: body.institutionId,
        institutionName: body.institutionName,
        accountCount: ACCOUNTS.length,
        accounts: ACCOUNTS,
      });
    } else if (response.ok) {
      emit("error", {reason: body.statusReason, details: "The institution could not complete the login."});
    } else {
      emit("error", {reason: body.code || "ERROR", details: body.message});
    }
  } catch (error) {
    result.textContent = "Failed: " + error;
    emit("error", {reason: "NETWORK_ERROR", details: String(error)});
  }
}
"""
)


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


# What the simulated bank shares: one account (Meld's connect_complete lists {name, type, mask}).
ACCOUNTS = [{"name": "Everyday Checking", "type": "CHECKING", "mask": "4321"}]


def _constants(**values: object) -> str:
    # JSON is valid JavaScript; "<" escaped so no value can close the <script> element.
    return "".join(f"const {name} = {json.dumps(value).replace('<', '\\u003c')};" for name, value in values.items())


def render_widget(*, token: str, institution_name: str, purpose: str, origins: tuple[str, ...] = ()) -> str:
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
        f"<script>{_constants(TOKEN=token, ORIGINS=list(origins), ACCOUNTS=ACCOUNTS)}{_SCRIPT}</script>"
    )
    return _page(f"Log in to {institution_name}", body)


def render_error(message: str, *, reason: str = "INVALID_LINK", origins: tuple[str, ...] = ()) -> str:
    """The page for a link the widget refuses; framed, it tells the app too (an ``error`` event)."""
    constants = _constants(ORIGINS=list(origins), ERROR={"reason": reason, "details": message})
    script = f'<script>{constants}{_EMIT}emit("error", ERROR);</script>'
    return _page("Link unavailable", f"<h1>This link cannot be used</h1><p>{escape(message)}</p>{script}")
