"""The local stack's pure parts: route matching, claims as the handler sees them, template resolution, Lambda
responses. The JWT authorizer and the local issuer: test_local_identity.py."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from local.config import LocalConfig
from local.eventbridge import scheduled_event
from local.gateway import lambda_response, match_route
from local.jwt_tokens import api_gateway_claims
from local.template import HttpRoute, Resolver, functions


def _route(method: str, path: str) -> HttpRoute:
    return HttpRoute(function=f"{method} {path}", method=method, path=path, authorizer=None)


ROUTES = [
    _route("GET", "/connections"),
    _route("GET", "/connections/{connectionId}"),
    _route("POST", "/connections/{connectionId}/repair"),
    _route("ANY", "/connections/{proxy+}"),
    _route("GET", "/connections/special"),
]


@pytest.mark.parametrize(
    ("method", "path", "expected", "parameters"),
    [
        ("GET", "/connections", "GET /connections", {}),
        ("GET", "/connections/abc", "GET /connections/{connectionId}", {"connectionId": "abc"}),
        ("GET", "/connections/special", "GET /connections/special", {}),
        ("POST", "/connections/a%20b/repair", "POST /connections/{connectionId}/repair", {"connectionId": "a b"}),
        ("DELETE", "/connections/x/y", "ANY /connections/{proxy+}", {"proxy": "x/y"}),
    ],
)
def test_the_most_specific_route_wins(method: str, path: str, expected: str, parameters: dict[str, str]) -> None:
    found = match_route(ROUTES, method, path)
    assert found is not None
    assert found.route.function == expected
    assert found.path_parameters == parameters


def test_no_matching_route_is_none() -> None:
    assert match_route(ROUTES, "POST", "/webhooks/meld") is None
    assert match_route(ROUTES, "PUT", "/connections") is None


def test_claims_reach_the_handler_as_strings() -> None:
    claims = api_gateway_claims({"sub": "c", "exp": 5, "groups": ["a", "b"], "verified": True})
    assert claims == {"sub": "c", "exp": "5", "groups": "[a b]", "verified": "true"}


TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "Origins": {"Type": "CommaDelimitedList", "Default": "https://a.test,https://b.test"},
        "Url": {"Type": "String", "Default": ""},
    },
    "Conditions": {"NoUrl": {"Fn::Equals": [{"Ref": "Url"}, ""]}},
    "Globals": {"Function": {"Timeout": 10, "Environment": {"Variables": {"BUS": {"Ref": "Bus"}}}}},
    "Resources": {
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": {"Fn::Sub": "${AWS::StackName}-events"}}},
        "Fn": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "CodeUri": "functions/x/",
                "Handler": "app.handler",
                "Environment": {
                    "Variables": {
                        "URL": {"Fn::If": ["NoUrl", {"Fn::GetAtt": "Bus.Arn"}, {"Ref": "Url"}]},
                        "GONE": {"Ref": "AWS::NoValue"},
                    }
                },
                "Events": {"Api": {"Type": "HttpApi", "Properties": {"Method": "get", "Path": "/x/{id}"}}},
            },
        },
        "Rule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventBusName": {"Ref": "Bus"},
                "EventPattern": {"source": ["app"]},
                "Targets": [{"Id": "t", "Arn": {"Fn::GetAtt": ["Fn", "Arn"]}}],
            },
        },
        "Sweep": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "ScheduleExpression": "rate(5 minutes)",
                "Targets": [{"Id": "t", "Arn": {"Fn::GetAtt": "Fn.Arn"}}],
            },
        },
    },
}


def test_functions_are_read_with_their_environment_routes_and_rules() -> None:
    resolver = Resolver(TEMPLATE, stack_name="s")
    resolver.attributes["Bus.Arn"] = "arn:bus"
    (spec,) = functions(TEMPLATE, resolver)
    assert spec.environment == {"BUS": "s-events", "URL": "arn:bus"}
    assert spec.timeout == 10
    assert [route.route_key for route in spec.routes] == ["GET /x/{id}"]
    pattern, schedule = sorted(spec.rules, key=lambda rule: rule.kind)
    assert (pattern.bus, pattern.pattern) == ("s-events", {"source": ["app"]})
    assert (schedule.bus, schedule.schedule) == ("default", "rate(5 minutes)")
    assert resolver.resolve({"Ref": "Origins"}) == ["https://a.test", "https://b.test"]


def test_lambda_responses_map_to_http_like_api_gateway() -> None:
    plain = lambda_response({"ok": True})
    assert (plain.status, plain.body) == (200, b'{"ok": true}')
    binary = lambda_response(
        {"statusCode": 201, "body": base64.b64encode(b"\x00").decode(), "isBase64Encoded": True, "cookies": ["a=1"]}
    )
    assert (binary.status, binary.body, ("set-cookie", "a=1") in binary.headers) == (201, b"\x00", True)
    assert lambda_response({"statusCode": "nope"}).status == 500


def test_a_scheduled_event_is_what_eventbridge_sends() -> None:
    event = scheduled_event("sweep")
    assert (event["source"], event["detail-type"], event["detail"]) == ("aws.events", "Scheduled Event", {})
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/sweep"]


def test_the_signed_webhook_url_is_meld_webhook_url_or_the_parameter_else_the_local_api():
    from local.config import LocalConfig

    tunnel = "https://abc123.tunnel.example.com/webhooks/meld"
    assert LocalConfig.from_env({}).signed_webhook_url == "http://127.0.0.1:3000/webhooks/meld"
    assert LocalConfig.from_env({"MELD_WEBHOOK_URL": tunnel}).signed_webhook_url == tunnel
    from_parameter = LocalConfig.from_env({"LOCAL_PARAMETER_OVERRIDES": f"MeldWebhookUrl={tunnel}"})
    assert from_parameter.signed_webhook_url == tunnel
    # Delivered locally all the same
    assert from_parameter.webhook_url == "http://127.0.0.1:3000/webhooks/meld"


def test_the_example_app_is_the_local_stacks_app_unless_overridden() -> None:
    config = LocalConfig.from_env({"LOCAL_WEB_PORT": "4100"})
    assert config.parameter_overrides["CorsAllowedOrigins"] == "http://127.0.0.1:4100"
    assert config.parameter_overrides["AppReconnectUrl"] == "http://127.0.0.1:4100/connections/{connectionId}/reconnect"
    mine = LocalConfig.from_env({"LOCAL_PARAMETER_OVERRIDES": "CorsAllowedOrigins=https://app.example"})
    assert mine.parameter_overrides["CorsAllowedOrigins"] == "https://app.example"
