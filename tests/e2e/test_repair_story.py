"""The repair story and its error paths over HTTP, against the local stack (the Repair API's routes, the notifier)."""

from __future__ import annotations

import time
import uuid

import pytest

from local.demo import Demo
from tests.e2e.conftest import TOKEN_LIFETIME_SECONDS, RunningStack, deployed_routes, has_notifier

REPAIR = "POST /connections/{connectionId}/repair"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(REPAIR not in deployed_routes(), reason="RepairApiFunction not deployed in template.yaml"),
]


def _customer() -> str:
    return f"e2e-{uuid.uuid4().hex[:8]}"


def test_the_demo_story_runs_end_to_end(stack: RunningStack) -> None:
    lines: list[str] = []
    demo = Demo(stack.config, sweep_wait=2.5, out=lines.append)
    try:
        demo.run()
    finally:
        demo.close()
    output = "\n".join(lines)
    assert "The connection is ACTIVE again" in output
    assert '"status": "ACTIVE"' in output
    if has_notifier():
        assert "skipped" not in output, output
        assert "emails to the customer before / after the repair and a sweep: 1 / 1" in output


def test_no_token_is_401(stack: RunningStack) -> None:
    with stack.api() as api:
        response = api.get("/connections")
        expired = api.get("/connections", headers={"Authorization": "Bearer not.a.token"})
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert expired.status_code == 401


def test_another_customers_connection_is_not_found(stack: RunningStack) -> None:
    connection = stack.broken_connection(_customer())
    intruder = {"Authorization": f"Bearer {stack.token(_customer())}"}
    with stack.api() as api:
        read = api.get(f"/connections/{connection['id']}", headers=intruder)
        repair = api.post(f"/connections/{connection['id']}/repair", headers=intruder)
        listed = api.get("/connections", headers=intruder)
    assert read.status_code == 404
    assert repair.status_code == 404
    assert listed.status_code == 200
    assert connection["id"] not in listed.text


def test_meld_failing_during_a_repair_is_a_retryable_error_not_a_500(stack: RunningStack) -> None:
    customer = _customer()
    connection = stack.broken_connection(customer)
    with stack.simulator() as sim, stack.api() as api:
        sim.add_fault("repair", "500", count=20)
        try:
            response = api.post(
                f"/connections/{connection['id']}/repair", headers={"Authorization": f"Bearer {stack.token(customer)}"}
            )
        finally:
            sim.clear_faults()
    assert response.status_code in (502, 503), response.text
    assert "retry-after" in response.headers or response.status_code == 502
    assert "Traceback" not in response.text


def test_an_expired_widget_token_is_refused(stack: RunningStack) -> None:
    customer = _customer()
    connection = stack.broken_connection(customer)
    with stack.api() as api:
        repair = api.post(
            f"/connections/{connection['id']}/repair", headers={"Authorization": f"Bearer {stack.token(customer)}"}
        )
    assert repair.status_code == 200, repair.text
    time.sleep(TOKEN_LIFETIME_SECONDS + 0.5)
    with stack.simulator() as sim:
        completed = sim.http.post("/_sim/widget/complete", json={"connectToken": repair.json()["connectToken"]})
    assert completed.status_code == 400


def test_a_customer_erased_over_http_has_nothing_left_to_see(stack: RunningStack) -> None:
    customer = _customer()
    connection = stack.broken_connection(customer)
    signed_in = {"Authorization": f"Bearer {stack.token(customer)}"}
    with stack.api() as api:
        assert api.put("/me/notifications", json={"email": "ada@example.com"}, headers=signed_in).status_code == 200
        assert connection["id"] in api.get("/connections", headers=signed_in).text
        anonymous = api.delete("/me")
        erased = api.delete("/me", headers=signed_in)
        listed = api.get("/connections", headers=signed_in)
        preferences = api.get("/me/notifications", headers=signed_in)
    assert anonymous.status_code == 401  # API Gateway's authorizer: nobody erases without signing in
    with stack.api() as api:
        # A browser app may ask it too (CORS allows DELETE from the app's origins)
        preflight = api.options(
            "/me", headers={"Origin": stack.config.web_url, "Access-Control-Request-Method": "DELETE"}
        )
    assert "DELETE" in preflight.headers["access-control-allow-methods"].split(",")
    assert (erased.status_code, erased.text) == (204, "")
    assert listed.json() == {"connections": []}
    assert preferences.json()["email"] is None
    stored = stack.store().get_connection(connection["id"])
    assert stored is not None
    assert stored.external_customer_id is None  # Meld's connection stays known, no longer theirs


def test_an_emails_unsubscribe_link_works_over_http_without_signing_in(stack: RunningStack) -> None:
    import json

    import boto3

    from connection_repair.preferences.unsubscribe import unsubscribe_token
    from local.template import Resolver, load_template

    customer = _customer()
    name = Resolver(load_template(), stack_name=stack.config.stack_name).physical_name("UnsubscribeSigningSecret")
    secrets = boto3.client("secretsmanager", **stack.config.aws_client_args())
    secret = json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])["current"]
    token = unsubscribe_token(secret, customer)
    signed_in = {"Authorization": f"Bearer {stack.token(customer)}"}
    with stack.api() as api:
        assert api.put("/me/notifications", json={"email": "ada@example.com"}, headers=signed_in).status_code == 200
        page = api.get("/unsubscribe", params={"token": token})
        one_click = api.post(
            "/unsubscribe",
            params={"token": token},
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        forged = api.post("/unsubscribe", params={"token": unsubscribe_token("guess", customer)})
        preferences = api.get("/me/notifications", headers=signed_in).json()
    assert (page.status_code, "<form" in page.text) == (200, True)
    assert (one_click.status_code, forged.status_code) == (200, 404)
    assert (preferences["optedOut"], preferences["email"]) == (True, "ada@example.com")
