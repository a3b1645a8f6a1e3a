"""Invoke a function of the running local stack, as `sam remote invoke` does a deployed one.

    python -m local.invoke ReconcilerFunction '{"mode": "backfill"}'

Prints the function's answer; exits 1 when the function failed, 2 when the stack is not running or refuses.
"""

from __future__ import annotations

import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local.config import LocalConfig

USAGE = "usage: python -m local.invoke <FunctionLogicalId> [<event JSON>]"
# A backfill may run for the function's whole timeout (15 minutes).
READ_TIMEOUT_SECONDS = 960


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(USAGE, file=sys.stderr)
        return 2
    function, event = argv[0], argv[1] if len(argv) == 2 else "{}"
    try:
        json.loads(event)
    except ValueError:
        print(f"the event must be JSON: {event!r}", file=sys.stderr)
        return 2
    config = LocalConfig.from_env()
    client = boto3.client(
        "lambda",
        endpoint_url=config.lambda_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(read_timeout=READ_TIMEOUT_SECONDS, retries={"max_attempts": 1}),
    )
    try:
        response = client.invoke(FunctionName=function, Payload=event.encode())
    except ClientError as error:
        print(f"{function}: {error.response['Error'].get('Message') or error}", file=sys.stderr)
        return 2
    except BotoCoreError as error:
        print(
            f"the local stack is not answering at {config.lambda_url} (is `make run` running?): {error}",
            file=sys.stderr,
        )
        return 2
    print(json.dumps(json.loads(response["Payload"].read() or b"null"), indent=2))
    return 1 if "FunctionError" in response else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
