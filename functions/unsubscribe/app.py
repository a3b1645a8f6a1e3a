"""The unsubscribe page: the link in every email, and a mail client's one-click POST (RFC 8058). No sign-in: the
signed token in the link says whose messages to stop (docs/decisions.md §47). Served on the stack's public API, beside
Meld's webhook, whether or not the Repair API is deployed."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any
from urllib.parse import quote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from connection_repair.platform.observability import logger, metrics, trace_handler
from connection_repair.preferences.unsubscribe import customer_of_token, opt_out
from connection_repair.wiring.unsubscribe import preferences_store, unsubscribe_verifier

app = APIGatewayHttpResolver(enable_validation=True)

# The pages must not be cached by browsers or proxies.
NO_STORE = {"Cache-Control": "no-store"}
UnsubscribeToken = Annotated[str, Query(max_length=1024, description="The signed token of the link in the email")]
ONE_CLICK = "POST /unsubscribe"
_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title></head>'
    '<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem">'
    "<h1>{title}</h1><p>{text}</p>{form}</body></html>"
)
_HTML = {
    200: OpenAPIResponse(description="A page for the customer", content={"text/html": {}}),
    404: OpenAPIResponse(
        description="Not a link signed for anyone: a page saying so; nothing changed", content={"text/html": {}}
    ),
}


def _page(status: HTTPStatus, title: str, text: str, form: str = "") -> Response[str]:
    return Response(
        status_code=status,
        content_type="text/html; charset=utf-8",
        body=_PAGE.format(title=html.escape(title), text=html.escape(text), form=form),
        headers=NO_STORE,
    )


def _not_a_link() -> Response[str]:
    return _page(
        HTTPStatus.NOT_FOUND,
        "This link does not work",
        "It is not a link from one of our messages, or it was cut short. Nothing was changed.",
    )


@app.get(
    "/unsubscribe",
    summary="The page of an email's unsubscribe link: asks to confirm (a GET changes nothing: scanners open links)",
    responses=_HTML,
)
def unsubscribe_page(token: UnsubscribeToken) -> Response[str]:
    if customer_of_token(unsubscribe_verifier()(), token) is None:
        return _not_a_link()
    action = html.escape(f"?token={quote(token, safe='')}", quote=True)
    form = f'<form method="post" action="{action}"><button type="submit">Stop these messages</button></form>'
    return _page(
        HTTPStatus.OK, "Stop these messages?", "You will get no more messages about your bank connections.", form
    )


@app.post(
    "/unsubscribe",
    summary="Stop every message to the link's customer: the page's button, or a mail client's one-click POST (RFC "
    "8058). Idempotent.",
    responses=_HTML,
)
def unsubscribe(token: UnsubscribeToken) -> Response[str]:
    customer_id = customer_of_token(unsubscribe_verifier()(), token)
    if customer_id is None:
        return _not_a_link()
    opt_out(preferences_store(), customer_id, now=datetime.now(UTC))
    logger.info("Customer unsubscribed by link")
    return _page(
        HTTPStatus.OK,
        "You will get no more messages",
        "We will not email or text you about your bank connections again. You can turn messages back on in the app.",
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(capture_cold_start_metric=True)
@trace_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("routeKey") == ONE_CLICK:
        # A mail client's one-click POST carries "List-Unsubscribe=One-Click", form-encoded: the link says it all.
        event = {**event, "body": None, "isBase64Encoded": False}
    return app.resolve(event, context)
