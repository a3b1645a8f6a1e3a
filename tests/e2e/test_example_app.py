"""The example app as `make run` serves it: its pages, the prompt's modules, and an API that lets only it call in."""

from __future__ import annotations

import httpx
import pytest

from local.template import ROOT
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e


def _web(stack: RunningStack) -> httpx.Client:
    return httpx.Client(base_url=stack.config.web_url, timeout=10.0, trust_env=False)


@pytest.mark.parametrize("path", ["/", "/connections/AbC_12-x/reconnect"])
def test_the_app_page_points_at_the_api_and_may_frame_only_the_widget(stack: RunningStack, path: str) -> None:
    with _web(stack) as web:
        page = web.get(path)
    assert page.status_code == 200
    assert f'<meta name="repair-api" content="{stack.config.api_url}">' in page.text
    assert 'label for="customer">Customer id</label>' in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert f"connect-src 'self' {stack.config.api_url};" in policy
    assert f"frame-src {stack.config.meld_url};" in policy


def test_the_prompt_is_served_as_published_and_nothing_else_is(stack: RunningStack) -> None:
    with _web(stack) as web:
        module = web.get("/reconnect-prompt/index.js")
        app = web.get("/app/app.js")
        missing = [
            web.get(path).status_code
            for path in (
                "/reconnect-prompt/nothing.js",
                "/reconnect-prompt/../package.json",
                "/reconnect-prompt/%2e%2e/package.json",
                "/app/index.html",
                "/connections/a/b/reconnect",
            )
        ]
    assert module.status_code == app.status_code == 200
    assert module.headers["content-type"] == "text/javascript; charset=utf-8"
    assert module.text == (ROOT / "web" / "reconnect-prompt" / "src" / "index.js").read_text()
    assert missing == [404] * 5


def _preflight(stack: RunningStack, origin: str) -> httpx.Response:
    with stack.api() as api:
        return api.options(
            "/connections",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
            },
        )


def test_the_api_lets_the_example_app_call_it_with_the_prompts_headers(stack: RunningStack) -> None:
    answer = _preflight(stack, stack.config.web_url)
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == stack.config.web_url
    allowed = answer.headers["access-control-allow-headers"].split(",")
    assert {"authorization", "content-type", "idempotency-key"} <= set(allowed)
    with stack.api() as api:
        listed = api.get(
            "/connections",
            headers={"Origin": stack.config.web_url, "Authorization": f"Bearer {stack.token('cors-customer')}"},
        )
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == stack.config.web_url
    assert listed.headers["access-control-expose-headers"] == "retry-after"


def test_the_api_lets_no_other_origin_call_it(stack: RunningStack) -> None:
    answer = _preflight(stack, "http://127.0.0.1:1")
    with stack.api() as api:
        refused = api.get("/connections", headers={"Origin": "https://evil.test"})
    assert "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-origin" not in refused.headers
