"""The fault matrix: each fault injected at the AWS or Meld boundary, its documented outcome asserted, and
then the books checked from the table and the bus: nothing lost, nothing applied twice.

Faults come from botocore ``before-call`` hooks on the clients the code under test built (the hook answers in the
service's place, as after botocore's own retries gave up), from the Meld simulator's ``/_sim/faults`` over real HTTP,
or from httpx's MockTransport; the code under test is never replaced.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest

from connection_repair.adapters.dynamodb.keys import connection_key
from connection_repair.adapters.eventbridge import PUT_ATTEMPTS
from connection_repair.adapters.meld.client import MeldClient
from connection_repair.adapters.meld.gateway import MeldConnectGateway
from connection_repair.repair.service import RepairService
from functions.webhook_ingest import app as webhook_app
from local.apigw import http_api_event
from local.aws_resources import LocalResources
from local.meld_simulator import MeldSimulator, SimulatorConfig
from local.meld_simulator.client import SimulatorClient
from tests.aws_faults import AwsFault, aws_error, scan, transaction_conflict
from tests.meld_to_webhook import MeldToWebhook, meld_delivering_to_the_webhook
from tests.repair_api_support import (
    CUSTOMER,
    MeldStandIn,
    RepairApi,
    connection,
    install_repair_api,
    meld_json,
    store_for,
)
from tests.support import LambdaContext, signed_delivery, status_change

# --- Injecting AWS faults ----------------------------------------------------------------------------------------


def put_events_failing(
    refused: Callable[[dict[str, Any]], bool],
) -> Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]:
    """EventBridge's partial failure: the accepted entries reach the bus, the ``refused`` ones come back with an error
    code (HTTP 200, ``FailedEntryCount`` > 0), as PutEvents answers."""

    def reply(params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        entries = json.loads(params["body"])["Entries"]
        accepted = [entry for entry in entries if not refused(entry)]
        if accepted:
            # A client of its own (no fault hook) delivers what EventBridge took.
            boto3.client("events").put_events(Entries=accepted)
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "injected"}
            if refused(entry)
            else {"EventId": f"accepted-{index}"}
            for index, entry in enumerate(entries)
        ]
        return 200, {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}

    return reply


# --- The webhook, its table and its bus ---------------------------------------------------------------------------

NOW = datetime.now(UTC)


def at(minutes: int) -> str:
    return (NOW - timedelta(hours=1) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def deliver(body: dict[str, Any], *, retry_count: int = 0) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One signed delivery through the real handler, as API Gateway passes it on."""
    delivery = signed_delivery(body, now=datetime.now(UTC), retry_count=retry_count)
    event = http_api_event(
        "POST",
        "/webhooks/meld",
        route_key="POST /webhooks/meld",
        headers=dict(delivery.headers) | {"content-type": "application/json"},
        body=delivery.raw_body,
    )
    response = webhook_app.lambda_handler(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"]), response.get("headers") or {}


def ingestor_client(kind: str) -> Any:
    from connection_repair.wiring.webhook import webhook_ingestor

    ingestor = webhook_ingestor()
    return ingestor._events._store._client if kind == "dynamodb" else ingestor._events._outbox._publisher._client  # type: ignore[attr-defined]


@dataclass
class Books:
    """What the table and the bus hold after a row: the ledger the "nothing lost, nothing twice" checks read."""

    events: dict[str, dict[str, Any]]
    connections: dict[str, dict[str, Any]]
    published: list[dict[str, Any]] = field(default_factory=list)

    @property
    def outbox(self) -> list[str]:
        return [event_id for event_id, item in self.events.items() if "pending" in item]

    def published_kinds(self) -> Counter[tuple[str, str]]:
        return Counter((e["detail-type"], e["detail"]["episodeId"]) for e in self.published)


def books(table: str, published: list[dict[str, Any]]) -> Books:
    items = scan(table)
    return Books(
        events={i["eventId"]["S"]: i for i in items if i["sk"]["S"] == "EVENT"},
        connections={i["pk"]["S"].removeprefix("CONN#"): i for i in items if i["sk"]["S"] == "CONNECTION"},
        published=published,
    )


# A publishing lease that has lapsed as soon as it is taken: Meld's retry (a minute later in production, moments
# later here) may take over the outbox at once. Leases are kept in whole seconds.
LAPSED = timedelta(seconds=-1)

BROKEN = status_change("evt-broken", at(1), "RECONNECT_REQUIRED", "LOGIN_REQUIRED")


@pytest.fixture
def webhook(webhook_env: LocalResources) -> LocalResources:
    return webhook_env


# Row 1: DynamoDB refuses the ingest transaction (after botocore's own retries gave up). Refused for load: 503
# STORE_BUSY (Meld retries; nobody is paged). Any other failure: 500 (alarmed).
STORE_FAULTS = {
    "throttled (ProvisionedThroughputExceededException)": (
        aws_error("ProvisionedThroughputExceededException"),
        (503, "STORE_BUSY"),
    ),
    "throttled (ThrottlingException)": (aws_error("ThrottlingException"), (503, "STORE_BUSY")),
    "transaction conflict on the event item": (transaction_conflict(on_item=0), (503, "STORE_BUSY")),
    "transaction conflict on the connection item": (transaction_conflict(on_item=1), (503, "STORE_BUSY")),
    "service error (500)": (aws_error("InternalServerError", 500), (500, "INTERNAL_ERROR")),
}


@pytest.mark.parametrize(("fault", "answer"), STORE_FAULTS.values(), ids=STORE_FAULTS.keys())
@pytest.mark.parametrize("failing_call", [1, 2], ids=["first write", "transition write"])
def test_store_faults_on_ingest_write_nothing_and_the_retry_applies_once(
    webhook: LocalResources,
    downstream: Callable[[], list[dict[str, Any]]],
    fault: Any,
    answer: tuple[int, str],
    failing_call: int,
) -> None:
    # Given a broken connection event whose write path is silent attempt (refused, no connection yet) + transition
    injected = AwsFault(ingestor_client("dynamodb"), "dynamodb.TransactWriteItems", fault, skip=failing_call - 1)

    # When DynamoDB refuses the write
    status, body, headers = deliver(BROKEN)

    # Then Meld is told to retry, nothing is half-written and nothing went downstream
    assert injected.injected == 1
    assert (status, body["error"]) == answer
    assert headers.get("Retry-After") == ("5" if status == 503 else None)
    assert scan(webhook.table_name) == []
    assert downstream() == []

    # When Meld retries
    status, body, _ = deliver(BROKEN, retry_count=1)

    # Then it is applied exactly once, with one downstream event
    assert (status, body["status"]) == (200, "accepted")
    ledger = books(webhook.table_name, downstream())
    assert list(ledger.events) == ["evt-broken"]
    assert ledger.events["evt-broken"]["retryCount"]["N"] == "1"
    assert ledger.outbox == []
    assert ledger.connections["conn-1"]["version"]["N"] == "1"
    assert [e["detail-type"] for e in ledger.published] == ["Connection Needs Attention"]

    # And a further duplicate changes nothing
    assert deliver(BROKEN, retry_count=2)[1]["status"] == "duplicate"
    assert downstream() == []


def test_a_throttled_outbox_clear_after_publishing_is_retried_and_published_at_least_once(
    webhook: LocalResources, downstream: Callable[[], list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the bus took the event but clearing the outbox is throttled
    monkeypatch.setattr("connection_repair.outbox.outbox.PUBLISH_LEASE", LAPSED)
    AwsFault(ingestor_client("dynamodb"), "dynamodb.UpdateItem", aws_error("ProvisionedThroughputExceededException"))
    status, body, _ = deliver(BROKEN)
    assert (status, body["error"]) == (503, "STORE_BUSY")  # not acknowledged: Meld retries
    assert books(webhook.table_name, []).outbox == ["evt-broken"]

    # When Meld retries (the lease has lapsed)
    status, body, _ = deliver(BROKEN, retry_count=1)

    # Then the outbox is empty, the state applied once; downstream is at least once (docs/decisions.md §5): the
    # same episode's event twice, which the notifier's per-episode claim turns into one message
    assert (status, body["status"]) == (200, "duplicate")
    ledger = books(webhook.table_name, downstream())
    assert ledger.outbox == []
    assert ledger.connections["conn-1"]["version"]["N"] == "1"
    [(kind, count)] = ledger.published_kinds().items()
    assert (kind[0], count) == ("Connection Needs Attention", 2)


# Row 2: EventBridge accepts some entries of a PutEvents and refuses others, or refuses the call.

# Renewing access (ACCESS_EXPIRING_SOON) and then needing a repair: two downstream events in one PutEvents.
EXPIRING = status_change("evt-expiring", at(1), "ACTIVE", "ACCESS_EXPIRING_SOON")
BROKEN_AFTER_EXPIRING = status_change("evt-broken-2", at(2), "RECONNECT_REQUIRED", "LOGIN_REQUIRED")


def needs_attention(entry: dict[str, Any]) -> bool:
    return bool(entry["DetailType"] == "Connection Needs Attention")


def test_an_entry_eventbridge_refuses_once_is_sent_again_alone_and_the_delivery_acknowledged(
    webhook: LocalResources, downstream: Callable[[], list[dict[str, Any]]]
) -> None:
    assert deliver(EXPIRING)[0] == 200
    opened = downstream()

    # When EventBridge refuses the new episode's event once (the old episode's ending is accepted)
    injected = AwsFault(ingestor_client("events"), "events.PutEvents", put_events_failing(needs_attention))
    status, body, _ = deliver(BROKEN_AFTER_EXPIRING)

    # Then the publisher sends that entry again, alone, and the delivery is acknowledged with nothing pending
    assert (injected.injected, injected.calls) == (1, 2)
    assert (status, body["status"]) == (200, "accepted")
    ledger = books(webhook.table_name, opened + downstream())
    assert ledger.outbox == []
    # And every event arrived once: the accepted entry was not sent again
    assert sorted(ledger.published_kinds().values()) == [1, 1, 1]


@pytest.mark.parametrize(
    ("fault", "repaired_copies"),
    [(put_events_failing(needs_attention), 2), (put_events_failing(lambda entry: True), 1)],
    ids=["second entry refused", "every entry refused"],
)
def test_eventbridge_partial_failure_is_not_acknowledged_and_the_retry_publishes_what_is_pending(
    webhook: LocalResources,
    downstream: Callable[[], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    fault: Any,
    repaired_copies: int,
) -> None:
    monkeypatch.setattr("connection_repair.outbox.outbox.PUBLISH_LEASE", LAPSED)
    assert deliver(EXPIRING)[0] == 200
    opened = downstream()
    assert [e["detail-type"] for e in opened] == ["Connection Needs Attention"]

    # When EventBridge refuses part of the batch (the episode ends and a new one opens: two events), and the entries
    # it refused again each time the publisher sends them again
    injected = AwsFault(ingestor_client("events"), "events.PutEvents", fault, times=PUT_ATTEMPTS)
    status, body, headers = deliver(BROKEN_AFTER_EXPIRING)

    # Then it is stored with both events in the outbox and not acknowledged
    assert injected.injected == PUT_ATTEMPTS
    assert (status, body["error"], headers.get("Retry-After")) == (503, "PUBLISH_FAILED", "60")
    assert books(webhook.table_name, []).outbox == ["evt-broken-2"]

    # When Meld retries, the retry publishes what is pending and acknowledges
    status, body, _ = deliver(BROKEN_AFTER_EXPIRING, retry_count=1)
    assert (status, body["status"]) == (200, "duplicate")

    # Then nothing is lost: both events arrived (an entry EventBridge took the first time arrives twice: at least once)
    ledger = books(webhook.table_name, opened + downstream())
    assert ledger.outbox == []
    kinds = ledger.published_kinds()
    old_episode = opened[0]["detail"]["episodeId"]
    new_episode = ledger.connections["conn-1"]["episodeId"]["S"]
    assert set(kinds) == {
        ("Connection Needs Attention", old_episode),
        ("Connection Attention Ended", old_episode),
        ("Connection Needs Attention", new_episode),
    }
    assert kinds[("Connection Needs Attention", old_episode)] == 1
    assert kinds[("Connection Needs Attention", new_episode)] == 1
    # an entry EventBridge accepted before the failure is published again by the retry (the outbox is all or nothing)
    assert kinds[("Connection Attention Ended", old_episode)] == repaired_copies
    assert ledger.connections["conn-1"]["version"]["N"] == "2"


@pytest.mark.parametrize("code", ["ThrottlingException", "InternalException"])
def test_a_refused_put_events_call_is_a_publish_failure_not_a_lost_store(
    webhook: LocalResources, downstream: Callable[[], list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    # Given EventBridge refuses the whole call (throttled, or its 5xx outlasting botocore's retries)
    monkeypatch.setattr("connection_repair.outbox.outbox.PUBLISH_LEASE", LAPSED)
    AwsFault(ingestor_client("events"), "events.PutEvents", aws_error(code, 400 if "Throttl" in code else 500))

    status, body, headers = deliver(BROKEN)

    # Then the answer says what happened (stored, downstream pending: README's 503 PUBLISH_FAILED), not 500 "not stored"
    assert (status, body["error"], headers.get("Retry-After")) == (503, "PUBLISH_FAILED", "60")
    assert books(webhook.table_name, []).outbox == ["evt-broken"]
    assert downstream() == []
    # And Meld's retry publishes it once
    assert deliver(BROKEN, retry_count=1)[1]["status"] == "duplicate"
    assert [e["detail-type"] for e in downstream()] == ["Connection Needs Attention"]
    assert books(webhook.table_name, []).outbox == []


# Row 3: SES / SNS throttle the notifier's send.

# Row 4: Meld misbehaves during a repair (the simulator's faults over real HTTP; MockTransport for odd 200s).

SIM_KEY = "fault-matrix-meld-key"


@pytest.fixture
def simulator() -> Iterator[MeldSimulator]:
    # Webhooks to a closed port, never retried: this row is about the Repair API's calls to Meld.
    config = SimulatorConfig(
        api_key=SIM_KEY, port=0, webhook_url="http://127.0.0.1:9/closed", retry_delays=(), fault_timeout_seconds=1.0
    )
    with MeldSimulator(config) as sim:
        yield sim


@dataclass
class RepairRig:
    api: RepairApi
    sim: SimulatorClient
    connection_id: str
    sleeps: list[float]

    def repair(self) -> tuple[int, dict[str, str], Any]:
        return self.api.call("POST", f"/connections/{self.connection_id}/repair")

    def stored(self) -> dict[str, Any]:
        item = boto3.client("dynamodb").get_item(
            TableName=self.api.table_name, Key=connection_key(self.connection_id), ConsistentRead=True
        )["Item"]
        return dict(item)


@pytest.fixture
def repair_rig(aws: LocalResources, monkeypatch: pytest.MonkeyPatch, simulator: MeldSimulator) -> Iterator[RepairRig]:
    api = install_repair_api(aws.table_name, monkeypatch)
    sleeps: list[float] = []
    # The production client (3 attempts within 12 s), with short per-attempt timeouts and backoff recorded, not slept
    client = MeldClient(
        simulator.base_url,
        lambda: SIM_KEY,
        timeout=0.3,
        deadline_seconds=12.0,
        max_attempts=3,
        sleep=sleeps.append,
    )
    service = RepairService(connections=api.store, preferences=api.preferences, meld=MeldConnectGateway(client))
    from functions.repair_api import app

    monkeypatch.setattr(app, "repair_service", lambda: service)
    sim = SimulatorClient(simulator.base_url)
    created = sim.create_connection(CUSTOMER, status="RECONNECT_REQUIRED", status_reason="LOGIN_REQUIRED")
    api.store.save_connection(connection(created["id"]), expected_version=None)
    yield RepairRig(api, sim, created["id"], sleeps)
    sim.close()
    client.close()


MELD_FAULTS = {
    # mode, count, Retry-After given: expected status, code, Retry-After answered, Meld calls
    "429 on every attempt": ("429", 3, 2, 503, "MELD_UNAVAILABLE", "2", 3),
    "500 on every attempt": ("500", 3, None, 503, "MELD_UNAVAILABLE", "5", 3),
    "timeout on every attempt": ("timeout", 3, None, 503, "MELD_UNAVAILABLE", "5", 3),
    "502 HTML error page on every attempt": ("html", 3, None, 503, "MELD_UNAVAILABLE", "5", 3),
    "200 with malformed JSON": ("invalid_json", 1, None, 502, "MELD_BAD_RESPONSE", None, 1),
}


@pytest.mark.parametrize("fault", MELD_FAULTS.values(), ids=MELD_FAULTS.keys())
def test_meld_failing_a_repair_gets_the_documented_answer_and_records_no_attempt(
    repair_rig: RepairRig, fault: tuple[str, int, int | None, int, str, str | None, int]
) -> None:
    mode, count, retry_after, status, code, answered_retry_after, meld_calls = fault
    repair_rig.sim.add_fault("repair", mode, count=count, retry_after=retry_after)
    before = repair_rig.stored()

    answer, headers, body = repair_rig.repair()

    assert (answer, body["code"]) == (status, code)
    assert headers.get("Retry-After") == answered_retry_after
    assert "connectToken" not in json.dumps(body)
    assert len(repair_rig.sleeps) == meld_calls - 1  # retried (with backoff) only what is worth retrying
    if retry_after is not None:
        assert repair_rig.sleeps == [retry_after] * (meld_calls - 1)  # Meld's Retry-After honoured
    assert repair_rig.sim.http.get("/_sim/faults").json() == []  # every scripted failure was consumed: Meld was called
    # No repair attempt recorded: the connection item is untouched
    assert repair_rig.stored() == before


@pytest.mark.parametrize("mode", ["429", "500", "timeout", "html"])
def test_a_transient_meld_failure_is_retried_and_the_attempt_recorded_once(repair_rig: RepairRig, mode: str) -> None:
    repair_rig.sim.add_fault("repair", mode, count=2, retry_after=1 if mode == "429" else None)

    answer, headers, body = repair_rig.repair()

    assert answer == 200
    assert headers["Cache-Control"] == "no-store"
    assert body["connectToken"]
    assert body["widgetUrl"]
    assert len(repair_rig.sleeps) == 2
    stored = repair_rig.stored()
    assert (stored["repairAttempts"]["N"], stored["repairPending"]["BOOL"]) == ("1", True)


ODD_200S: dict[str, Callable[[httpx.Request], httpx.Response]] = {
    "text/html": lambda _: httpx.Response(
        200, content=b"<html>maintenance</html>", headers={"content-type": "text/html"}
    ),
    "no content type": lambda _: httpx.Response(200, content=b'{"id": "x"}'),
    "JSON of the wrong shape": lambda _: meld_json(200, {"id": "x", "connectToken": ""}),
}


@pytest.mark.parametrize("answer", ODD_200S.values(), ids=ODD_200S.keys())
def test_a_repair_answered_200_with_the_wrong_content_type_or_shape_is_502_and_records_nothing(
    aws: LocalResources, monkeypatch: pytest.MonkeyPatch, answer: Callable[[httpx.Request], httpx.Response]
) -> None:
    stand_in = MeldStandIn()
    stand_in.respond("POST", "/bank-linking/connect/repair", answer)
    api = install_repair_api(aws.table_name, monkeypatch, stand_in)
    api.store.save_connection(connection(), expected_version=None)
    before = store_for(aws.table_name).get_connection(connection().connection_id)

    status, _, body = api.call("POST", f"/connections/{connection().connection_id}/repair")

    assert (status, body["code"]) == (502, "MELD_BAD_RESPONSE")
    assert len(stand_in.calls("POST", "/bank-linking/connect/repair")) == 1  # not retried: retrying will not help
    assert store_for(aws.table_name).get_connection(connection().connection_id) == before


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("GET", "/connections", "dynamodb.Query"),
        ("GET", f"/connections/{connection().connection_id}", "dynamodb.GetItem"),
        ("POST", f"/connections/{connection().connection_id}/repair", "dynamodb.GetItem"),
    ],
)
def test_a_throttled_table_answers_503_store_busy_changes_nothing_and_pages_nobody(
    aws: LocalResources,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    method: str,
    path: str,
    operation: str,
) -> None:
    api = install_repair_api(aws.table_name, monkeypatch)
    api.store.save_connection(connection(), expected_version=None)
    before = store_for(aws.table_name).get_connection(connection().connection_id)
    AwsFault(api.service._connections._client, operation, aws_error("ProvisionedThroughputExceededException"))  # type: ignore[attr-defined]

    status, headers, body = api.call(method, path)

    assert (status, body["code"], headers.get("Retry-After")) == (503, "STORE_BUSY", "5")
    assert api.meld.requests == []
    assert store_for(aws.table_name).get_connection(connection().connection_id) == before
    printed = capsys.readouterr().out
    assert '"StoreThrottled"' in printed
    assert '"RepairApiErrors"' not in printed  # the alarmed metric: nobody is paged for load


# Row 5: the simulator's retries after a 5xx from our webhook (real HTTP to a receiver in front of the handler).


@pytest.fixture
def meld_to_webhook(webhook_env: LocalResources, monkeypatch: pytest.MonkeyPatch) -> Iterator[MeldToWebhook]:
    with meld_delivering_to_the_webhook(monkeypatch, SIM_KEY) as (_, client, receiver):
        yield MeldToWebhook(client, receiver)


def _break(rig: MeldToWebhook, table: str, arm: Callable[[], object]) -> tuple[str, int, list[dict[str, Any]]]:
    """A linked connection (COMPLETED and ACTIVE delivered), the fault armed, then RECONNECT_REQUIRED.

    Returns the connection id, its version before the change, and the change's delivery attempts."""
    created = rig.sim.create_connection(CUSTOMER, institution_name="Chase")
    rig.sim.wait_until_idle(timeout=10)
    assert [a["status"] for a in rig.sim.deliveries()] == [200, 200]
    version = int(books(table, []).connections[created["id"]]["version"]["N"])
    rig.sim.clear_deliveries()
    arm()
    rig.sim.set_status(created["id"], "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    rig.sim.wait_until_idle(timeout=10)
    return created["id"], version, rig.sim.deliveries()


@pytest.mark.parametrize(
    ("service", "fault", "first_answer"),
    [
        ("dynamodb", ("dynamodb.TransactWriteItems", aws_error("ProvisionedThroughputExceededException")), 503),
        ("dynamodb", ("dynamodb.TransactWriteItems", aws_error("InternalServerError", 500)), 500),
        ("events", ("events.PutEvents", put_events_failing(lambda entry: True)), 503),
    ],
    ids=["store throttled: 503", "store failing: 500", "bus refused: 503"],
)
def test_meld_retries_a_failed_delivery_and_the_retry_is_applied_once(
    meld_to_webhook: MeldToWebhook,
    downstream: Callable[[], list[dict[str, Any]]],
    webhook_env: LocalResources,
    monkeypatch: pytest.MonkeyPatch,
    service: str,
    fault: tuple[str, Any],
    first_answer: int,
) -> None:
    monkeypatch.setattr("connection_repair.outbox.outbox.PUBLISH_LEASE", LAPSED)
    # Given the webhook fails the next delivery of a state change (its first write, or its publish)
    operation, reply = fault

    # A refused entry is sent again within the delivery: refuse it each time.
    times = PUT_ATTEMPTS if service == "events" else 1
    arm = lambda: AwsFault(ingestor_client(service), operation, reply, times=times)  # noqa: E731
    connection_id, version, attempts = _break(meld_to_webhook, webhook_env.table_name, arm)

    # Then Meld saw the 5xx, retried with Meld-Retry-Count, and the retry got a 200
    assert [(a["status"], a["retryCount"]) for a in attempts] == [(first_answer, 0), (200, 1)]
    assert meld_to_webhook.receiver.answers[-2:] == [first_answer, 200]
    # And the event is applied exactly once, announced exactly once, nothing left in the outbox
    ledger = books(webhook_env.table_name, downstream())
    [event_id] = {a["eventId"] for a in attempts}
    assert ledger.events[event_id]["retryCount"]["N"] == ("1" if service == "dynamodb" else "0")
    assert ledger.outbox == []
    assert ledger.connections[connection_id]["status"]["S"] == "RECONNECT_REQUIRED"
    assert int(ledger.connections[connection_id]["version"]["N"]) == version + 1  # the change, applied once
    assert [e["detail-type"] for e in ledger.published] == ["Connection Needs Attention"]
