"""Every events/*.json is a complete event of the kind it claims, usable by `sam local invoke -e`."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventV2Model,
    EventBridgeModel,
    SnsModel,
    SqsModel,
)

from functions.reconciler.app import ReconcileRequest
from tests.support import EVENTS_DIR

FILES = sorted(EVENTS_DIR.glob("*.json"))


def test_there_are_events():
    assert len(FILES) >= 7


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_event_parses_as_the_kind_it_claims(path):
    document = json.loads(path.read_text())
    if "routeKey" in document:
        event = APIGatewayProxyEventV2Model.model_validate(document)
        assert event.requestContext.http.method in {"GET", "POST", "PUT", "DELETE", "PATCH"}
        method, route = event.routeKey.split(" ", 1)
        assert method == event.requestContext.http.method
        assert route.startswith("/")
    elif "detail-type" in document:
        event = EventBridgeModel.model_validate(document)
        assert event.source
    elif "Records" in document and document["Records"][0].get("EventSource") == "aws:sns":
        notifications = SnsModel.model_validate(document)
        assert all(record.Sns.TopicArn.startswith("arn:aws:sns:") for record in notifications.Records)
    elif "Records" in document:
        batch = SqsModel.model_validate(document)
        assert batch.Records
        assert all(record.eventSource == "aws:sqs" for record in batch.Records)
    elif set(document) == {"mode"}:
        # A direct invocation (`sam local invoke` / `sam remote invoke --event-file`): the reconciler's request.
        assert ReconcileRequest.model_validate(document).mode == document["mode"]
    else:
        pytest.fail(
            f"{path.name} is neither an API Gateway HTTP API, an EventBridge, an SQS or SNS event nor a request"
        )
