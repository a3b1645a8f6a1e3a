"""Secrets come from Secrets Manager in AWS (cached) or directly from the environment locally."""

from __future__ import annotations

import json

import boto3
import pytest
from pydantic import SecretStr

from connection_repair.adapters.secrets import secret_source


@pytest.fixture
def secretsmanager(aws):
    from aws_lambda_powertools.utilities.parameters import clear_caches

    clear_caches()  # Powertools keeps values per process; each test starts cold
    yield boto3.client("secretsmanager")
    clear_caches()


def test_json_secret_gives_current_then_previous_for_rotation(secretsmanager):
    secretsmanager.create_secret(Name="webhook", SecretString=json.dumps({"current": "new", "previous": "old"}))
    values = secret_source(name="webhook", direct=(None, None), keys=("current", "previous"))
    assert values() == ["new", "old"]


def test_empty_previous_is_left_out(secretsmanager):
    secretsmanager.create_secret(Name="webhook", SecretString=json.dumps({"current": "only", "previous": ""}))
    assert secret_source(name="webhook", direct=(None,), keys=("current", "previous"))() == ["only"]


def test_plain_string_secret_is_the_value(secretsmanager):
    secretsmanager.create_secret(Name="api-key", SecretString="raw-key")
    assert secret_source(name="api-key", direct=(None,), keys=("apiKey",))() == ["raw-key"]


def test_secret_is_cached_between_calls(secretsmanager):
    secretsmanager.create_secret(Name="cached", SecretString=json.dumps({"apiKey": "first"}))
    values = secret_source(name="cached", direct=(None,), keys=("apiKey",))
    assert values() == ["first"]
    secretsmanager.put_secret_value(SecretId="cached", SecretString=json.dumps({"apiKey": "second"}))
    assert values() == ["first"]  # within the 5-minute cache


def test_direct_values_win_and_never_touch_secrets_manager(secretsmanager):
    values = secret_source(name="does-not-exist", direct=(SecretStr("local"),), keys=("current",))
    assert values() == ["local"]
