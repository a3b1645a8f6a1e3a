"""``python -m local.outbox`` (``make outbox``): the email the local stack has sent, as moto's SES recorded it."""

from __future__ import annotations

import email
import email.policy
import html
import json
import re
import sys
import urllib.request
from dataclasses import dataclass
from typing import Any

from local.config import LocalConfig


@dataclass(frozen=True)
class SentEmail:
    sender: str
    recipients: list[str]
    subject: str
    text: str


def sent_emails(aws_url: str, *, timeout: float = 30.0) -> list[SentEmail]:
    """Every message moto's SES accepted, oldest first (simple and raw sends)."""
    # moto serialises every service's state for this: slow once a long session (the e2e suite) has filled it.
    # No proxy: the developer's HTTP proxy must not intercept a loopback call.
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with direct.open(f"{aws_url}/moto-api/data.json", timeout=timeout) as response:
        ses: dict[str, list[dict[str, Any]]] = json.load(response).get("ses", {})
    found = [_simple(message) for message in ses.get("Message", [])]
    found += [_raw(message) for message in ses.get("RawMessage", [])]
    return found


def _simple(message: dict[str, Any]) -> SentEmail:
    destinations = message.get("destinations") or {}
    recipients = [
        address for kind in ("ToAddresses", "CcAddresses", "BccAddresses") for address in destinations.get(kind, [])
    ]
    return SentEmail(message.get("source", ""), recipients, message.get("subject", ""), _text(message.get("body", "")))


def _raw(message: dict[str, Any]) -> SentEmail:
    parsed = email.message_from_string(message.get("raw_data", ""), policy=email.policy.default)
    part = parsed.get_body(preferencelist=("plain", "html"))
    body = part.get_content() if part is not None else ""
    recipients = list(message.get("destinations") or []) or [str(parsed.get("To", ""))]
    return SentEmail(str(parsed.get("From", "")), recipients, str(parsed.get("Subject", "")), _text(str(body)))


def _text(body: str) -> str:
    # moto keeps one body per message, the HTML part when there is one: show it as readable text.
    if not re.search(r"</(p|div|html|body|a|td)>", body, re.IGNORECASE):
        return body.strip()
    body = re.sub(r"<a\s[^>]*href=\"([^\"]*)\"[^>]*>(.*?)</a>", r"\2 (\1)", body, flags=re.IGNORECASE | re.DOTALL)
    body = re.sub(r"<(br|/p|/div|/h\d|/li|/tr)\b[^>]*>", "\n", body, flags=re.IGNORECASE)
    body = html.unescape(re.sub(r"<[^>]+>", "", body))
    lines = [" ".join(line.split()) for line in body.splitlines()]
    return "\n".join(line for line in lines if line)


def main() -> None:
    config = LocalConfig.from_env()
    try:
        messages = sent_emails(config.aws_url)
    except OSError as error:
        sys.exit(f"cannot reach the local stack's AWS endpoint {config.aws_url} ({error}); is `make run` running?")
    if not messages:
        print("(no email sent yet)")
    for number, message in enumerate(messages, 1):
        print(f"--- {number}. to {', '.join(message.recipients)} from {message.sender}")
        print(f"Subject: {message.subject}")
        print(message.text)
        print()


if __name__ == "__main__":
    main()
