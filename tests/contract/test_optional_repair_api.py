"""A stack without `JwtIssuer` deploys without the Repair API: webhooks, notifications and the unsubscribe links,
and nothing that needs a JWT issuer. (cfn-lint, in `make template`, checks that nothing unconditional refers to a
conditional resource.)"""

from __future__ import annotations

from typing import Any

from local.template import Resolver, load_template

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
# What exists only with the Repair API: its API (the JWT authorizer), its function and what watches them.
REPAIR_API = {
    "RepairHttpApi",
    "RepairApiFunction",
    "RepairApiFunctionLogGroup",
    "RepairApiFunctionErrorsAlarm",
    "RepairApiHandledErrorsAlarm",
    "RepairApiGateway5xxAlarm",
    "MeldConfigurationErrorsAlarm",
    "MeldUnavailableAlarm",
}


def deployed(parameters: dict[str, str]) -> set[str]:
    """The resources CloudFormation creates with these parameters."""
    resolver = Resolver(TEMPLATE, parameter_overrides=parameters)
    return {
        name
        for name, resource in RESOURCES.items()
        if "Condition" not in resource or resolver.condition(resource["Condition"])
    }


# Every other option on, so that only the issuer decides.
OPTIONS = {
    "SenderEmail": "notifications@app.example.com",
    "MessageTemplatesBucket": "templates",
    "NotifierReservedConcurrency": "2",
    "ReplacerReservedConcurrency": "2",
    "NoWebhookAlarmHours": "6",
}
ISSUER = {"JwtIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool", "JwtAudience": "app-client"}


def test_without_an_issuer_there_is_no_repair_api_and_the_rest_is_all_there() -> None:
    without = deployed(OPTIONS)

    assert deployed(OPTIONS | ISSUER) - without == REPAIR_API
    assert {"WebhookFunction", "NotifierFunction", "UnsubscribeFunction", "HttpApi"} <= without
    # Nothing asks for the parameters that are not given
    assert {"JwtIssuer", "JwtAudience"} <= {
        name for name, parameter in TEMPLATE["Parameters"].items() if "Default" in parameter
    }


def test_with_every_option_everything_is_deployed() -> None:
    assert deployed(OPTIONS | ISSUER) == set(RESOURCES)


def test_the_jwt_authorizer_is_only_on_the_repair_apis_own_api() -> None:
    with_auth = {
        name
        for name, resource in RESOURCES.items()
        if resource["Type"] == "AWS::Serverless::HttpApi" and "Auth" in resource["Properties"]
    }
    assert with_auth == {"RepairHttpApi"}
    # The links in emails and Meld's webhook are on the public API, which every stack has
    public_routes = {
        (event["Properties"]["Method"], event["Properties"]["Path"])
        for resource in RESOURCES.values()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in (resource["Properties"].get("Events") or {}).values()
        if event["Type"] == "HttpApi" and event["Properties"]["ApiId"] == {"Ref": "HttpApi"}
    }
    assert public_routes == {("POST", "/webhooks/meld"), ("GET", "/unsubscribe"), ("POST", "/unsubscribe")}
    notifier = RESOURCES["NotifierFunction"]["Properties"]["Environment"]["Variables"]
    assert "${HttpApi}" in notifier["UNSUBSCRIBE_URL"]["Fn::Sub"]
