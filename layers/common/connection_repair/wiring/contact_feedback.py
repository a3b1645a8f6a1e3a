"""The contact-feedback function's use case: SES's bounces and complaints, recorded in the notifier's state."""

from __future__ import annotations

from functools import cache

import boto3
from botocore.config import Config

from connection_repair.adapters.dynamodb.notifications import DynamoDBNotificationStore
from connection_repair.platform.settings import TableSettings

# Nobody waits on it (SNS retries a failed delivery): ordinary timeouts, standard retries.
FEEDBACK_AWS_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})


@cache
def feedback_store() -> DynamoDBNotificationStore:
    settings = TableSettings.from_env()
    return DynamoDBNotificationStore(boto3.client("dynamodb", config=FEEDBACK_AWS_CONFIG), settings.table_name)
