"""How the operator tools find a deployed stack's resources (``STACK=<name>``): by logical id through
CloudFormation, its outputs, and a function's configured environment (on moto's CloudFormation)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from ops.stack import DeployedStack

TEMPLATE = {
    "Resources": {
        "ConnectionsTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            },
        },
        "NotifierDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
        "WebhookRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            },
        },
        "WebhookFunction": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.12",
                "Handler": "app.lambda_handler",
                "Role": {"Fn::GetAtt": ["WebhookRole", "Arn"]},
                "Code": {"ZipFile": "def lambda_handler(event, context): return None"},
                "Environment": {"Variables": {"TABLE_NAME": {"Ref": "ConnectionsTable"}, "MAX_FAILED_REPAIRS": "2"}},
            },
        },
    },
    "Outputs": {"TableName": {"Value": {"Ref": "ConnectionsTable"}}, "WebhookUrl": {"Value": "https://hooks.test/m"}},
}


@pytest.fixture
def deployed() -> Iterator[DeployedStack]:
    with mock_aws():
        boto3.client("cloudformation").create_stack(StackName="repair-prod", TemplateBody=json.dumps(TEMPLATE))
        yield DeployedStack("repair-prod")


def test_resources_are_found_by_their_logical_ids_and_outputs_by_name(deployed: DeployedStack) -> None:
    table = deployed.table_name()
    assert table in boto3.client("dynamodb").list_tables()["TableNames"]
    assert deployed.outputs() == {"TableName": table, "WebhookUrl": "https://hooks.test/m"}
    queue = deployed.queue_url("NotifierDeadLetterQueue")
    assert queue in boto3.client("sqs").list_queues()["QueueUrls"]


def test_a_functions_environment_is_read_as_it_is_configured(deployed: DeployedStack) -> None:
    environment = deployed.function_environment("WebhookFunction")

    assert environment == {"TABLE_NAME": deployed.table_name(), "MAX_FAILED_REPAIRS": "2"}
