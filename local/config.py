"""The local stack's settings, from the environment (every name documented in the README's "Run it locally")."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.template import DEFAULT_STACK_NAME, ROOT, parse_parameter_overrides

# Loopback only: the stack accepts well-known secrets and must never be reachable from the network.
HOST = "127.0.0.1"
# Used when the template's JWT authorizer has no issuer/audience of its own (e.g. empty parameter defaults); the
# issuer then is the local one, served with the example app (LOCAL_WEB_PORT).
DEFAULT_JWT_AUDIENCE = "connection-repair-local"
# Template parameters whose deployed defaults do not suit a laptop: a sender address (moto verifies it as an SES
# identity) and no digest wait before the first message, so the story shows within a sweep. Applied only when the
# template has the parameter; LOCAL_PARAMETER_OVERRIDES wins over them.
LOCAL_PARAMETER_DEFAULTS = {"SenderEmail": "notifications@connection-repair.local", "DigestWindowMinutes": "0"}


def example_app_parameters(web_url: str) -> dict[str, str]:
    """The example app is the app of the local stack: its origin may call the API, its page is the message's link."""
    return {"CorsAllowedOrigins": web_url, "AppReconnectUrl": f"{web_url}/connections/{{connectionId}}/reconnect"}


@dataclass(frozen=True)
class LocalConfig:
    aws_port: int = 5000
    api_port: int = 3000
    meld_port: int = 3001
    # Lambda's Invoke API for the functions (as `sam local start-lambda`): `make backfill`, `aws lambda invoke`.
    lambda_port: int = 3003
    # The example app, and the local OIDC issuer whose tokens the API accepts.
    web_port: int = 3002
    jwt_issuer_override: str | None = None
    jwt_audience: str = DEFAULT_JWT_AUDIENCE
    # The issuer's RSA signing key, made on first use; shared by the stack and `make token`.
    jwt_key_file: Path = field(default_factory=lambda: ROOT / ".local" / "jwt-signing-key.pem")
    sweep_seconds: float = 30.0
    stack_name: str = DEFAULT_STACK_NAME
    webhook_secret: str = "local-webhook-secret"
    meld_api_key: str = "local-meld-api-key"
    parameter_overrides: Mapping[str, str] = field(default_factory=lambda: dict(LOCAL_PARAMETER_DEFAULTS))
    # Webhook retry delays of the simulator ("1,2,4"); None keeps its default.
    meld_retry_delays: str | None = None
    # The public URL Meld signs (MELD_WEBHOOK_URL, or the MeldWebhookUrl parameter), e.g. a tunnel to this laptop
    # that Meld's sandbox delivers to; None: the local API's own URL.
    public_webhook_url: str | None = None

    @property
    def aws_url(self) -> str:
        return f"http://{HOST}:{self.aws_port}"

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    @property
    def lambda_url(self) -> str:
        return f"http://{HOST}:{self.lambda_port}"

    @property
    def web_url(self) -> str:
        return f"http://{HOST}:{self.web_port}"

    @property
    def jwt_issuer(self) -> str:
        return self.jwt_issuer_override or self.web_url

    @property
    def meld_url(self) -> str:
        return f"http://{HOST}:{self.meld_port}"

    @property
    def webhook_url(self) -> str:
        """Where webhooks are delivered locally."""
        return f"{self.api_url}/webhooks/meld"

    @property
    def signed_webhook_url(self) -> str:
        """The URL webhooks are signed over: what the function verifies, and what the simulator signs."""
        return self.public_webhook_url or self.webhook_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LocalConfig:
        env = os.environ if environ is None else environ
        overrides = parse_parameter_overrides(env.get("LOCAL_PARAMETER_OVERRIDES") or "")
        web_port = int(env.get("LOCAL_WEB_PORT") or 3002)
        return cls(
            aws_port=int(env.get("LOCAL_AWS_PORT") or 5000),
            api_port=int(env.get("LOCAL_API_PORT") or 3000),
            meld_port=int(env.get("LOCAL_MELD_PORT") or 3001),
            lambda_port=int(env.get("LOCAL_LAMBDA_PORT") or 3003),
            web_port=web_port,
            jwt_issuer_override=env.get("LOCAL_JWT_ISSUER") or None,
            jwt_audience=env.get("LOCAL_JWT_AUDIENCE") or DEFAULT_JWT_AUDIENCE,
            sweep_seconds=float(env.get("LOCAL_SWEEP_SECONDS") or 30),
            stack_name=env.get("LOCAL_STACK_NAME") or DEFAULT_STACK_NAME,
            webhook_secret=env.get("MELD_WEBHOOK_SECRET") or "local-webhook-secret",
            meld_api_key=env.get("MELD_API_KEY") or "local-meld-api-key",
            parameter_overrides=LOCAL_PARAMETER_DEFAULTS
            | example_app_parameters(f"http://{HOST}:{web_port}")
            | overrides,
            meld_retry_delays=env.get("LOCAL_MELD_RETRY_DELAYS"),
            public_webhook_url=env.get("MELD_WEBHOOK_URL") or overrides.get("MeldWebhookUrl") or None,
        )

    def aws_client_args(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.aws_url,
            "region_name": "us-east-1",
            "aws_access_key_id": "local",
            "aws_secret_access_key": "local",
        }
