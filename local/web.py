"""The local stack's front door for people: the example app, and the OIDC issuer it signs customers in with.

Served on 127.0.0.1:LOCAL_WEB_PORT (default 3002). The issuer's endpoints are what API Gateway's JWT authorizer reads
(``/.well-known/openid-configuration``, ``/.well-known/jwks.json``) and ``POST /token``, the local sign-in: a
customer id in, a signed token for it out. There is no password: this runs on the loopback interface only, for a
developer who is every customer of their local stack.

The example app (``web/example-app``) is one page: ``/`` (sign in, then the customer's connections) and
``/connections/{connectionId}/reconnect`` (the link in a notification: the prompt on that connection). It imports the
reconnect prompt's modules as they are (``/reconnect-prompt/*.js``, no build step).
"""

from __future__ import annotations

import html
import json
import logging
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from local.config import HOST
from local.jwt_tokens import DISCOVERY_PATH, JWKS_PATH, LocalIssuer
from local.serving import ServedInBackground
from local.template import ROOT

logger = logging.getLogger("local.web")

# An externalCustomerId as the local sign-in takes it: printable, no spaces, a sane length.
CUSTOMER_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
TOKEN_LIFETIME_SECONDS = 3600
MAX_BODY_BYTES = 4096
APP = ROOT / "web" / "example-app"
PROMPT = ROOT / "web" / "reconnect-prompt" / "src"
PAGES = re.compile(r"^/(connections/[A-Za-z0-9_-]{1,64}/reconnect)?$")
# Static files by URL: the app's own, and the prompt's modules as they are published.
STATIC = re.compile(r"^/(?P<where>app|reconnect-prompt)/(?P<name>[a-z][a-z-]*\.(?:js|css))$")
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


class WebServer(ServedInBackground):
    def __init__(self, issuer: LocalIssuer, port: int, *, api_url: str = "", widget_origin: str = "") -> None:
        self.issuer = issuer
        self.api_url = api_url
        self.widget_origin = widget_origin
        server = _Server((HOST, port), _Handler)
        server.web = self
        self._serve(server, "web")

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if method == "GET" and path == DISCOVERY_PATH:
            return _json(200, self.issuer.discovery())
        if method == "GET" and path == JWKS_PATH:
            return _json(200, self.issuer.jwks())
        if path == "/token":
            return self._token(body) if method == "POST" else _json(405, {"message": "use POST"})
        if method in ("GET", "HEAD") and PAGES.match(path):
            return self._page()
        if method in ("GET", "HEAD") and (found := STATIC.match(path)):
            folder = APP if found["where"] == "app" else PROMPT
            file = folder / found["name"]
            if file.is_file():
                return 200, {"content-type": TYPES[file.suffix], "cache-control": "no-cache"}, file.read_bytes()
        return _json(404, {"message": "Not Found"})

    def _page(self) -> tuple[int, dict[str, str], bytes]:
        page = (APP / "index.html").read_text().replace("{{REPAIR_API_URL}}", html.escape(self.api_url, quote=True))
        # What the app's page may load, call and frame: itself, the Repair API, Meld's widget.
        policy = (
            f"default-src 'self'; connect-src 'self' {self.api_url}; frame-src {self.widget_origin or "'none'"}; "
            "img-src 'self' data:; object-src 'none'; base-uri 'none'"
        )
        headers = {"content-type": "text/html; charset=utf-8", "cache-control": "no-cache"}
        return 200, headers | {"content-security-policy": policy}, page.encode()

    def _token(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            customer = json.loads(body).get("customer")
        except (ValueError, AttributeError):
            return _json(400, {"message": 'send {"customer": "<externalCustomerId>"} as JSON'})
        if not isinstance(customer, str) or not CUSTOMER_ID.match(customer):
            return _json(400, {"message": "customer: 1 to 128 printable characters, no spaces"})
        token = self.issuer.issue(customer, lifetime_seconds=TOKEN_LIFETIME_SECONDS)
        return _json(200, {"accessToken": token, "tokenType": "Bearer", "expiresIn": TOKEN_LIFETIME_SECONDS})


def _json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    headers = {"content-type": "application/json", "cache-control": "no-store"}
    return status, headers, json.dumps(body).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    web: WebServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            status, headers, body = _json(413, {"message": "too large"})
            self.close_connection = True
        else:
            request = self.rfile.read(length) if length > 0 else b""
            try:
                status, headers, body = self.server.web.handle(self.command, urlsplit(self.path).path, request)
            except Exception:
                logger.exception("web server failure")
                status, headers, body = _json(500, {"message": "Internal Server Error"})
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)
