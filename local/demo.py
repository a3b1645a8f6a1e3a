"""``python -m local.demo`` (``make demo``): the repair story against a running local stack, step by step.

A customer links a bank, the connection breaks, the customer is emailed, asks for a repair, completes the simulator's
widget, the connection is ACTIVE again and the reminders stop. Every step prints what the API answered. Steps whose
function is not in template.yaml yet are printed as skipped, so the demo runs at every stage of the project.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from local.config import LocalConfig
from local.jwt_tokens import local_issuer
from local.meld_simulator.client import SimulatorClient
from local.outbox import SentEmail, sent_emails
from local.template import FunctionSpec, Resolver, functions, load_template

REPAIR_ROUTE = "POST /connections/{connectionId}/repair"
GET_ROUTE = "GET /connections/{connectionId}"
PREFERENCES_ROUTE = "PUT /me/notifications"
NEEDS_ATTENTION = "Connection Needs Attention"


class DemoFailed(Exception):
    pass


@dataclass(frozen=True)
class Deployed:
    """What template.yaml serves today: route keys → function, and the function told about broken connections."""

    routes: dict[str, str]
    notifier: str | None

    @classmethod
    def from_template(cls, config: LocalConfig) -> Deployed:
        template = load_template()
        specs = functions(template, Resolver(template, stack_name=config.stack_name))
        routes = {route.route_key: spec.name for spec in specs for route in spec.routes}
        return cls(routes=routes, notifier=next((spec.name for spec in specs if _hears_attention(spec)), None))

    def serves(self, route_key: str) -> bool:
        return route_key in self.routes


def _hears_attention(spec: FunctionSpec) -> bool:
    return any(rule.kind == "pattern" and NEEDS_ATTENTION in json.dumps(rule.pattern) for rule in spec.rules)


def wait_for[T](check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll ``check`` until it returns something; ``DemoFailed`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise DemoFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Demo:
    def __init__(self, config: LocalConfig, *, sweep_wait: float, out: Callable[[str], None] = print) -> None:
        self.config = config
        self.deployed = Deployed.from_template(config)
        self.sweep_wait = sweep_wait
        self.out = out
        suffix = uuid.uuid4().hex[:8]
        self.customer = f"demo-{suffix}"
        self.email = f"demo-{suffix}@example.com"
        self.token = local_issuer(config).issue(self.customer)
        self.api = httpx.Client(base_url=config.api_url, timeout=35.0, trust_env=False)
        self.sim = SimulatorClient(config.meld_url, timeout=10.0)
        self._step = 0
        self._shown: set[tuple[str, int]] = set()

    def close(self) -> None:
        self.api.close()
        self.sim.close()

    # --- output -------------------------------------------------------------------------------------------------

    def step(self, title: str) -> None:
        self._step += 1
        self.out(f"\n{self._step}. {title}")

    def said(self, label: str, value: Any) -> None:
        self.out(f"   {label}: {_short(value)}")

    def skipped(self, function: str) -> None:
        self.out(f"   skipped: {function} not deployed in template.yaml")

    def call(self, method: str, path: str, *, expect: int, body: dict[str, Any] | None = None) -> Any:
        response = self.api.request(method, path, json=body, headers={"Authorization": f"Bearer {self.token}"})
        answer = response.json() if response.content else None
        self.said(f"{method} {path} → {response.status_code}", answer)
        if response.status_code != expect:
            raise DemoFailed(f"{method} {path} answered {response.status_code}, expected {expect}")
        return answer

    # --- the story ----------------------------------------------------------------------------------------------

    def run(self) -> None:
        self.out(f"Customer {self.customer} ({self.email}); API {self.config.api_url}, Meld {self.config.meld_url}")
        self.set_contact()
        connection_id = self.link_bank()
        self.show_connection(connection_id, "NONE")
        self.break_connection(connection_id)
        self.show_connection(connection_id, "REPAIR")
        emails = self.customer_is_emailed()
        token = self.ask_for_repair(connection_id)
        if token is not None:
            self.complete_widget(token, connection_id)
            self.reminders_stop(connection_id, emails)
        self.out("\nDone.")

    def set_contact(self) -> None:
        self.step("The customer saves an email address for notifications")
        if not self.deployed.serves(PREFERENCES_ROUTE):
            return self.skipped(f"{PREFERENCES_ROUTE} (repair API)")
        self.call("PUT", "/me/notifications", expect=200, body={"email": self.email, "channels": ["EMAIL"]})
        return None

    def link_bank(self) -> str:
        self.step("The customer links a bank (Meld simulator)")
        connection = self.sim.create_connection(self.customer, institution_name="Chase")
        connection_id = str(connection["id"])
        self.said("POST /_sim/connections → 201", {key: connection[key] for key in ("id", "status")})
        self._deliveries(connection_id, count=2)
        return connection_id

    def _deliveries(self, connection_id: str, *, count: int) -> None:
        """Wait until ``count`` webhooks for the connection were answered 200, and show the answers."""

        def answered() -> list[dict[str, Any]] | None:
            mine = [item for item in self.sim.deliveries() if item["connectionId"] == connection_id]
            return mine if sum(1 for item in mine if item["status"] == 200) >= count else None

        for item in wait_for(answered, timeout=20, what="the webhooks to be delivered"):
            if (item["eventId"], item["attempt"]) not in self._shown:
                self._shown.add((item["eventId"], item["attempt"]))
                self.said(f"webhook {item['eventType']} → POST /webhooks/meld answered", item["status"])

    def show_connection(self, connection_id: str, action: str) -> None:
        self.step(f"The app reads the connection (expects action {action})")
        if not self.deployed.serves(GET_ROUTE):
            return self.skipped(f"{GET_ROUTE} (repair API)")
        answer = self.call("GET", f"/connections/{connection_id}", expect=200)
        if answer.get("action") != action:
            raise DemoFailed(f"action is {answer.get('action')}, expected {action}")
        return None

    def break_connection(self, connection_id: str) -> None:
        self.step("The bank asks the customer to sign in again: RECONNECT_REQUIRED")
        changed = self.sim.set_status(connection_id, "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
        self.said(f"POST /_sim/connections/{connection_id}/status → 200", {"status": changed["status"]})
        self._deliveries(connection_id, count=3)

    def _mine(self) -> list[SentEmail]:
        return [item for item in sent_emails(self.config.aws_url) if self.email in item.recipients]

    def customer_is_emailed(self) -> int:
        self.step("The customer is emailed (make outbox)")
        if self.deployed.notifier is None:
            self.skipped("a notifier (rule on Connection Needs Attention)")
            return 0
        if not self.deployed.serves(PREFERENCES_ROUTE):
            self.out("   skipped: no email address on file (PUT /me/notifications not deployed)")
            return 0
        # The first message goes out on the event or, with a digest window, on a sweep.
        emails = wait_for(lambda: self._mine() or None, timeout=self.sweep_wait + 20, what="the email")
        for item in emails:
            self.said(f"to {', '.join(item.recipients)}", item.subject)
            self.out("     " + "\n     ".join(item.text.splitlines()[:4]))
        return len(emails)

    def ask_for_repair(self, connection_id: str) -> str | None:
        self.step("The customer taps the link; the app asks for a repair")
        if not self.deployed.serves(REPAIR_ROUTE):
            self.skipped(f"{REPAIR_ROUTE} (repair API)")
            return None
        answer = self.call("POST", f"/connections/{connection_id}/repair", expect=200)
        return str(answer["connectToken"])

    def complete_widget(self, token: str, connection_id: str) -> None:
        self.step("The customer completes the Meld widget")
        completed = self.sim.complete_widget(token)
        self.said("POST /_sim/widget/complete → 200", {"id": completed["id"], "status": completed["status"]})

        def active() -> dict[str, Any] | None:
            response = self.api.get(f"/connections/{connection_id}", headers={"Authorization": f"Bearer {self.token}"})
            answer: dict[str, Any] = response.json()
            return answer if answer.get("status") == "ACTIVE" else None

        self.step("The connection is ACTIVE again")
        answer = wait_for(active, timeout=20, what="the connection to be ACTIVE")
        self.said(f"GET /connections/{connection_id} → 200", answer)

    def reminders_stop(self, connection_id: str, emails_before: int) -> None:
        self.step("Reminders stop")
        if self.deployed.notifier is None:
            return self.skipped("a notifier (rule on Connection Needs Attention)")
        self.out(f"   waiting {self.sweep_wait:.0f} s for a reminder sweep (LOCAL_SWEEP_SECONDS)...")
        time.sleep(self.sweep_wait)
        after = len(self._mine())
        self.said("emails to the customer before / after the repair and a sweep", f"{emails_before} / {after}")
        if after != emails_before:
            raise DemoFailed("a message was sent after the repair")
        return None


def main(argv: list[str] | None = None) -> None:
    config = LocalConfig.from_env()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sweep-wait",
        type=float,
        default=min(config.sweep_seconds + 3, 40),
        help="seconds to wait for a reminder sweep at the end (default: LOCAL_SWEEP_SECONDS + 3, at most 40)",
    )
    args = parser.parse_args(argv)
    demo = Demo(config, sweep_wait=args.sweep_wait)
    try:
        demo.sim.health()
    except httpx.HTTPError:
        demo.close()
        sys.exit(f"the local stack is not running at {config.meld_url}: start it with `make run`")
    try:
        demo.run()
    except (DemoFailed, httpx.HTTPError) as error:
        print(f"\nFAILED: {error}")
        sys.exit(1)
    finally:
        demo.close()


if __name__ == "__main__":
    main()
