"""The Repair API: the signed-in customer's connections, repair tokens, new connections and notification preferences.

API Gateway's JWT authorizer has checked the token; the caller is one of its claims (CUSTOMER_ID_CLAIM, default
``sub``), which is the ``externalCustomerId`` the app gave Meld. Exceptions become HTTP answers in one place, below.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseHeader
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from connection_repair.domain.status_policy import Action
from connection_repair.erasure.service import erase_customer
from connection_repair.platform.aws import is_throttled
from connection_repair.platform.observability import logger, metrics, trace_handler
from connection_repair.platform.settings import MissingConfiguration
from connection_repair.preferences.model import NotificationPreferences
from connection_repair.repair.api_models import (
    MELD_ID_PATTERN,
    ConflictBody,
    ConnectionList,
    ConnectionView,
    ConnectSessionView,
    ErrorBody,
    FieldError,
    NewConnectionView,
    StartConnectionBody,
    UnauthorizedBody,
    ValidationErrorBody,
)
from connection_repair.repair.listing import Listing, Past
from connection_repair.repair.ports import KeyReused, MeldFailure, MeldFailureKind, RequestInProgress
from connection_repair.repair.service import ConnectionNotFound, NotRepairable, StartRejected, StartRequest
from connection_repair.wiring.repair_api import (
    customer_records,
    repair_api_settings,
    repair_service,
    request_records,
)

app = APIGatewayHttpResolver(enable_validation=True)

ConnectionId = Annotated[str, Path(pattern=MELD_ID_PATTERN, description="A Meld connection id")]
# Tokens must not be cached by browsers or proxies.
NO_STORE = {"Cache-Control": "no-store"}
# When Meld gave no Retry-After: long enough for a blip to pass, short enough for a person to try again.
DEFAULT_RETRY_AFTER_SECONDS = 5


def _answer(
    description: str, model: type[BaseModel], headers: dict[str, OpenAPIResponseHeader] | None = None
) -> OpenAPIResponse:
    response = OpenAPIResponse(description=description, content={"application/json": {"model": model}})
    if headers:
        response["headers"] = headers
    return response


_RETRY_AFTER: dict[str, OpenAPIResponseHeader] = {
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
}
_ERRORS: dict[int, OpenAPIResponse] = {
    401: _answer("No valid token (API Gateway's authorizer), or no caller identity in it", UnauthorizedBody),
    415: _answer("A body that is not application/json (UNSUPPORTED_MEDIA_TYPE); nothing changed", ErrorBody),
    422: _answer("Invalid request: field-level messages, nothing changed", ValidationErrorBody),
    502: _answer("Meld misconfigured (MELD_CONFIGURATION_ERROR) or answered unusably", ErrorBody),
    503: _answer(
        "Meld unavailable after bounded retries (MELD_UNAVAILABLE), or the table busy (STORE_BUSY); nothing changed",
        ErrorBody,
        _RETRY_AFTER,
    ),
}
_NOT_FOUND: dict[int, OpenAPIResponse] = {404: _answer("No such connection, or not the caller's", ErrorBody)}
_IDEMPOTENT: dict[int, OpenAPIResponse] = {
    409: _answer(
        "The first request with this Idempotency-Key is still being answered (REQUEST_IN_PROGRESS, action WAIT)",
        ConflictBody,
        _RETRY_AFTER,
    ),
}
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="idempotency-key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description=(
            "Retries with the same key (same caller, within 24 h) get the first answer, and Meld is called once; "
            "the same key with another body is refused (422 IDEMPOTENCY_KEY_REUSED)"
        ),
    ),
]
_JSON_ONLY: dict[int, OpenAPIResponse] = {
    415: _answer("The body is not application/json (UNSUPPORTED_MEDIA_TYPE)", ErrorBody)
}


class Unauthenticated(Exception):
    """No usable customer claim (the authorizer should have refused already)."""


def customer() -> str:
    """The caller's externalCustomerId, from the JWT claims API Gateway verified."""
    claim = repair_api_settings().customer_id_claim
    authorizer = app.current_event.request_context.authorizer
    claims = authorizer.jwt_claim if authorizer is not None else None
    value = (claims or {}).get(claim)
    if not isinstance(value, str) or not value:
        raise Unauthenticated(claim)
    return value


# --- Routes ------------------------------------------------------------------------------------------------------


_PAST = "|".join(past.value for past in Past)
NeedsAction = Annotated[
    bool,
    Query(
        alias="needsAction",
        description="true: only connections with something to show the customer (any action but NONE, WAIT included)",
    ),
]
Include = Annotated[
    str | None,
    Query(
        pattern=rf"^({_PAST})(,({_PAST}))*$",
        description=(
            "Comma-separated: also list connections that are history: superseded (replaced by one the customer "
            "completed), deleted (DELETED at Meld), abandoned (started and never completed). Left out by default."
        ),
        examples=["superseded,deleted"],
    ),
]


@app.get(
    "/connections",
    summary="The caller's connections",
    responses={200: _answer("The caller's connections, those needing attention first", ConnectionList)} | _ERRORS,
)
def list_connections(needs_action: NeedsAction = False, include: Include = None) -> ConnectionList:
    service = repair_service()
    included = frozenset(Past(name) for name in (include or "").split(",") if name)
    listing = Listing(needs_action=needs_action, include=included)
    found = service.list_connections(customer(), listing)
    incidents = service.incidents(found)
    return ConnectionList(connections=[ConnectionView.of(connection, incidents) for connection in found])


@app.get(
    "/connections/<connectionId>",
    summary="One of the caller's connections",
    responses={200: _answer("The connection", ConnectionView)} | _ERRORS | _NOT_FOUND,
)
def get_connection(connectionId: ConnectionId) -> ConnectionView:
    service = repair_service()
    connection = service.get_connection(customer(), connectionId)
    return ConnectionView.of(connection, service.incidents([connection]))


@app.post(
    "/connections/<connectionId>/repair",
    summary="A fresh connect token and widget URL to repair one of the caller's connections",
    responses={200: _answer("A connect token; Cache-Control: no-store", ConnectSessionView)}
    | _ERRORS
    | _NOT_FOUND
    | {
        409: _answer(
            "EXPIRED, DELETED, IN_PROGRESS or replaced (start a new connection), working (nothing to repair), or the "
            "first request with this Idempotency-Key still being answered (REQUEST_IN_PROGRESS, action WAIT)",
            ConflictBody,
        )
    },
)
def repair_connection(connectionId: ConnectionId, idempotency_key: IdempotencyKey = None) -> Response[dict[str, Any]]:
    caller = customer()

    def issue() -> dict[str, Any]:
        session = repair_service().repair(caller, connectionId)
        logger.info("Repair token issued", connection_id=connectionId, expires_at=session.expires_at.isoformat())
        metrics.add_metric(name="RepairTokensIssued", unit=MetricUnit.Count, value=1)
        return ConnectSessionView.of(session).model_dump(mode="json", by_alias=True)

    body = _once(idempotency_key, caller, f"repair {connectionId}", {}, issue)
    return Response(status_code=HTTPStatus.OK, content_type=content_types.APPLICATION_JSON, body=body, headers=NO_STORE)


@app.post(
    "/connections",
    summary="Start a new connection for the caller, optionally replacing one of theirs",
    responses={201: _answer("The new connection's connect token; Cache-Control: no-store", NewConnectionView)}
    | _ERRORS
    | {404: _answer("replacesConnectionId is not one of the caller's", ErrorBody)}
    | _IDEMPOTENT,
)
def start_connection(
    body: Annotated[StartConnectionBody, Body()], idempotency_key: IdempotencyKey = None
) -> Response[dict[str, Any]]:
    caller = customer()
    request = StartRequest(
        institution_id=body.institution_id,
        products=[product.value for product in body.products] if body.products else None,
        replaces_connection_id=body.replaces_connection_id,
    )

    def start() -> dict[str, Any]:
        session = repair_service().start(caller, request)
        logger.info("Connection started", connection_id=session.connection_id, replaces=session.replaces_connection_id)
        metrics.add_metric(name="ConnectionsStarted", unit=MetricUnit.Count, value=1)
        return NewConnectionView.of(session).model_dump(mode="json", by_alias=True)

    answer = _once(idempotency_key, caller, "start", body.model_dump(mode="json"), start)
    return Response(
        status_code=HTTPStatus.CREATED, content_type=content_types.APPLICATION_JSON, body=answer, headers=NO_STORE
    )


def _once(
    key: str | None, caller: str, action: str, request: dict[str, Any], answer: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """``answer()``, once per caller, action and Idempotency-Key when the client sent one."""
    if key is None:
        return answer()
    return request_records().once(f"{caller}#{action}#{key}", request, answer)


@app.get(
    "/me/notifications",
    summary="The caller's contact details and notification preferences (defaults until set)",
    responses={200: _answer("The preferences", NotificationPreferences)} | _ERRORS,
)
def get_notification_preferences() -> NotificationPreferences:
    return repair_service().get_preferences(customer())


@app.put(
    "/me/notifications",
    summary="Replace the caller's notification preferences",
    responses={200: _answer("The preferences as stored", NotificationPreferences)} | _ERRORS,
)
def put_notification_preferences(body: Annotated[NotificationPreferences, Body()]) -> NotificationPreferences:
    return repair_service().set_preferences(customer(), body)


@app.delete(
    "/me",
    summary="Erase the caller: contact details, preferences and notification history removed, connections and "
    "stored events no longer naming them (docs/operations.md, Erasure). Idempotent.",
    responses={204: OpenAPIResponse(description="Erased (or nothing was left to erase)")} | _ERRORS,
)
def erase_me() -> Response[None]:
    erase_customer(customer_records(), customer())
    return Response(status_code=HTTPStatus.NO_CONTENT, headers=NO_STORE)


# --- Exceptions to HTTP, in one place ----------------------------------------------------------------------------


def _json(status: HTTPStatus, body: ErrorBody, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump(mode="json"),
        headers=headers,
    )


@app.exception_handler(RequestValidationError)
def invalid_request(error: RequestValidationError) -> Response[Any]:
    # Locations and pydantic's messages only: never the input (it may be an email or a phone number).
    fields = [
        FieldError(
            field=".".join(str(part) for part in issue["loc"] if part not in ("body", "path", "query")) or "body",
            message=str(issue.get("msg", issue["type"])),
            type=str(issue["type"]),
        )
        for issue in error.errors()
    ]
    return _json(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        ValidationErrorBody(code="INVALID_REQUEST", message="the request is not valid", errors=fields),
    )


@app.exception_handler(UnicodeDecodeError)
def undecodable_body(error: UnicodeDecodeError) -> Response[Any]:
    # API Gateway base64-encodes a body that is not UTF-8; JSON must be UTF-8 (RFC 8259). Anything else undecodable
    # is ours to explain.
    event = app.current_event
    if not (event.is_base64_encoded and error.object == base64.b64decode(event.body or "")):
        answer: Response[Any] = unexpected(error)
        return answer
    return _json(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        ValidationErrorBody(
            code="INVALID_REQUEST",
            message="the request is not valid",
            errors=[FieldError(field="body", message="the body is not UTF-8 text", type="json_invalid")],
        ),
    )


@app.exception_handler(KeyReused)
def key_reused(error: KeyReused) -> Response[Any]:
    message = "this Idempotency-Key came with another request; use a new key for a new request"
    return _json(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        ValidationErrorBody(
            code="IDEMPOTENCY_KEY_REUSED",
            message=message,
            errors=[FieldError(field="Idempotency-Key", message=message, type="idempotency_key_reused")],
        ),
    )


@app.exception_handler(RequestInProgress)
def in_progress(error: RequestInProgress) -> Response[Any]:
    body = ConflictBody(
        code="REQUEST_IN_PROGRESS",
        message="the first request with this Idempotency-Key is still being answered",
        status=None,
        action=Action.WAIT,
    )
    return _json(HTTPStatus.CONFLICT, body, {"Retry-After": "1"})


@app.exception_handler(NotFoundError)
def no_such_route(error: NotFoundError) -> Response[Any]:
    return _json(HTTPStatus.NOT_FOUND, ErrorBody(code="ROUTE_NOT_FOUND", message="no such route"))


@app.exception_handler(Unauthenticated)
def unauthenticated(error: Unauthenticated) -> Response[Any]:
    logger.warning("Request without the customer claim", claim=str(error))
    body = UnauthorizedBody(code="UNAUTHENTICATED", message="no customer identity")
    return Response(
        status_code=HTTPStatus.UNAUTHORIZED,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump(mode="json", exclude_none=True),
    )


@app.exception_handler(ConnectionNotFound)
def not_found(error: ConnectionNotFound) -> Response[Any]:
    return _json(HTTPStatus.NOT_FOUND, ErrorBody(code="CONNECTION_NOT_FOUND", message="no such connection"))


@app.exception_handler(NotRepairable)
def not_repairable(error: NotRepairable) -> Response[Any]:
    logger.info("Repair refused", connection_id=error.connection_id, status=error.status, code=error.code)
    body = ConflictBody(code=error.code, message=error.message, status=error.status, action=error.action)
    return _json(HTTPStatus.CONFLICT, body)


@app.exception_handler(StartRejected)
def start_rejected(error: StartRejected) -> Response[Any]:
    logger.warning("Meld refused to start a connection", meld_code=error.meld_code, meld_request_id=error.request_id)
    message = "Meld refused the request (check institutionId and products)"
    return _json(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        ValidationErrorBody(code="MELD_REJECTED_REQUEST", message=message, errors=[]),
    )


def _configuration_error(detail: str, request_id: str | None) -> Response[Any]:
    # The alarm on MeldConfigurationErrors pages on-call: every customer is affected, none can fix it.
    logger.error("Meld configuration error", detail=detail, meld_request_id=request_id)
    metrics.add_metric(name="MeldConfigurationErrors", unit=MetricUnit.Count, value=1)
    return _json(
        HTTPStatus.BAD_GATEWAY,
        ErrorBody(code="MELD_CONFIGURATION_ERROR", message="the bank-linking provider is misconfigured"),
    )


@app.exception_handler(MissingConfiguration)
def missing_configuration(error: MissingConfiguration) -> Response[Any]:
    return _configuration_error(str(error), None)


@app.exception_handler(MeldFailure)
def meld_failed(error: MeldFailure) -> Response[Any]:
    if error.kind == MeldFailureKind.MISCONFIGURED:
        return _configuration_error(f"Meld answered {error.status_code} {error.code or ''}".strip(), error.request_id)
    if error.kind == MeldFailureKind.UNAVAILABLE:
        retry_after = max(1, math.ceil(error.retry_after or DEFAULT_RETRY_AFTER_SECONDS))
        logger.warning(
            "Meld unavailable after retries",
            meld_status=error.status_code,
            meld_code=error.code,
            meld_request_id=error.request_id,
        )
        metrics.add_metric(name="MeldUnavailable", unit=MetricUnit.Count, value=1)
        return _json(
            HTTPStatus.SERVICE_UNAVAILABLE,
            ErrorBody(code="MELD_UNAVAILABLE", message="the bank-linking provider is unavailable; retry later"),
            {"Retry-After": str(retry_after)},
        )
    # Our request or Meld's answer was unusable: not something the caller can fix by retrying now.
    logger.error(
        "Meld call failed",
        kind=error.kind.value,
        meld_status=error.status_code,
        meld_code=error.code,
        meld_request_id=error.request_id,
    )
    metrics.add_metric(name="MeldBadGateway", unit=MetricUnit.Count, value=1)
    return _json(HTTPStatus.BAD_GATEWAY, ErrorBody(code=f"MELD_{error.kind.value}", message="Meld call failed"))


@app.exception_handler(Exception)
def unexpected(error: Exception) -> Response[Any]:
    if is_throttled(error):
        # DynamoDB refused for load after botocore's retries: the caller may retry; nobody needs paging for it.
        logger.warning("Repair API request refused: the table is busy", detail=type(error).__name__)
        metrics.add_metric(name="StoreThrottled", unit=MetricUnit.Count, value=1)
        return _json(
            HTTPStatus.SERVICE_UNAVAILABLE,
            ErrorBody(code="STORE_BUSY", message="the service is busy; retry later"),
            {"Retry-After": str(DEFAULT_RETRY_AFTER_SECONDS)},
        )
    # The stack trace goes to the log, never to the caller.
    logger.exception("Repair API request failed")
    metrics.add_metric(name="RepairApiErrors", unit=MetricUnit.Count, value=1)
    return _json(HTTPStatus.INTERNAL_SERVER_ERROR, ErrorBody(code="INTERNAL_ERROR", message="unexpected error"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(capture_cold_start_metric=True)
@trace_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if _not_json(event):
        # Before routing: Powertools would try to read a form (and fail on a malformed one).
        body = ErrorBody(code="UNSUPPORTED_MEDIA_TYPE", message="the body must be application/json")
        return {
            "statusCode": HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "headers": {"Content-Type": content_types.APPLICATION_JSON},
            "body": body.model_dump_json(),
            "isBase64Encoded": False,
        }
    return app.resolve(event, context)


def _not_json(event: dict[str, Any]) -> bool:
    """A body in any media type but JSON: this API reads nothing else."""
    if not event.get("body"):
        return False
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    return str(headers.get("content-type", "")).split(";")[0].strip().lower() != content_types.APPLICATION_JSON
