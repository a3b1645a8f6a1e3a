"""Reconciliation against the Meld simulator over HTTP, on moto: webhooks the simulator dropped are made good.

The simulator delivers to the real webhook handler; a `drop` fault loses webhooks for good (no attempt, no retry).
The reconciler then reads Meld back — the real handler and wiring for the runs, a Reconciler built on the same
adapters where a test needs its clock, its page size or its time budget.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest

from connection_repair.adapters.dynamodb.connection_store import DynamoDBConnectionStore
from connection_repair.adapters.dynamodb.reconciliation import DynamoDBKnownConnections, DynamoDBProgressStore
from connection_repair.adapters.eventbridge import EventBridgePublisher
from connection_repair.adapters.meld.client import MeldClient
from connection_repair.adapters.meld.gateway import MeldConnectionListing
from connection_repair.domain.connection import Connection
from connection_repair.ingestion.ingest import EventIngestor
from connection_repair.reconcile.drift import DriftKind
from connection_repair.reconcile.ports import Mode
from connection_repair.reconcile.service import Reconciler
from functions.reconciler import app as reconciler_app
from local.aws_resources import LocalResources
from local.meld_simulator.client import SimulatorClient
from tests.meld_to_webhook import meld_delivering_to_the_webhook
from tests.support import LambdaContext

SIM_KEY = "reconciliation-meld-key"
CUSTOMER = "customer-1"


@dataclass
class Rig:
    aws: LocalResources
    sim: SimulatorClient
    base_url: str
    downstream: Callable[[], list[dict[str, Any]]]

    def link(self, status: str = "ACTIVE", reason: str | None = None, *, customer: str = CUSTOMER) -> str:
        """A connection linked at Meld, its webhooks delivered."""
        created = self.sim.create_connection(customer, status=status, status_reason=reason, institution_name="Chase")
        self.sim.wait_until_idle(timeout=10)
        return str(created["id"])

    def lose_next(self, count: int) -> None:
        self.sim.add_fault("webhooks", "drop", count=count)

    def set_status(self, connection_id: str, status: str, reason: str | None = None) -> None:
        self.sim.set_status(connection_id, status, reason)
        self.sim.wait_until_idle(timeout=10)

    def held(self, connection_id: str) -> Connection | None:
        known = DynamoDBKnownConnections(boto3.client("dynamodb"), self.aws.table_name)
        return known.get_connections([connection_id]).get(connection_id)

    def ours(self, connection_id: str) -> Connection:
        held = self.held(connection_id)
        assert held is not None, f"{connection_id} is not stored"
        return held

    def announced(self) -> list[tuple[str, str]]:
        return [(event["detail-type"], event["detail"]["connectionId"]) for event in self.downstream()]

    def run(self, event: dict[str, Any] | None = None) -> dict[str, Any]:
        reconciler_app.reconciler.cache_clear()
        result: dict[str, Any] = reconciler_app.lambda_handler(
            event or scheduled(), LambdaContext(remaining_ms=900_000)
        )
        return result

    def reconciler(
        self,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        page_size: int = 100,
        client: MeldClient | None = None,
    ) -> Reconciler:
        dynamodb = boto3.client("dynamodb")
        meld = MeldConnectionListing(client or MeldClient(self.base_url, lambda: SIM_KEY, max_attempts=1))
        events = EventIngestor(
            store=DynamoDBConnectionStore(dynamodb, self.aws.table_name, event_ttl=timedelta(days=90)),
            publisher=EventBridgePublisher(boto3.client("events"), self.aws.event_bus_name, "connection-repair"),
            directory=lambda: meld,
            clock=clock,
        )
        return Reconciler(
            meld=meld,
            known=DynamoDBKnownConnections(dynamodb, self.aws.table_name),
            progress=DynamoDBProgressStore(dynamodb, self.aws.table_name),
            events=events,
            clock=clock,
            reserve_seconds=5,
            page_size=page_size,
        )


def scheduled() -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/reconcile"],
        "detail": {},
    }


@pytest.fixture
def rig(
    webhook_env: LocalResources, downstream: Callable[[], list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Rig]:
    with meld_delivering_to_the_webhook(monkeypatch, SIM_KEY) as (simulator, client, _):
        monkeypatch.setenv("MELD_API_BASE_URL", simulator.base_url)
        monkeypatch.setenv("MELD_API_KEY", SIM_KEY)
        yield Rig(webhook_env, client, simulator.base_url, downstream)
    reconciler_app.reconciler.cache_clear()


def test_a_break_whose_webhook_was_lost_is_found_and_announced_once(rig: Rig) -> None:
    connection_id = rig.link()
    rig.downstream()
    rig.lose_next(1)
    rig.set_status(connection_id, "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    assert rig.ours(connection_id).status == "ACTIVE"

    first = rig.run()
    again = rig.run()

    assert (first["drift"], first["complete"]) == ({"MissedBreak": 1}, True)
    assert again["drift"] == {}
    ours = rig.ours(connection_id)
    assert (ours.status, ours.status_reason, ours.needs_attention) == ("RECONNECT_REQUIRED", "LOGIN_REQUIRED", True)
    assert rig.announced() == [("Connection Needs Attention", connection_id)]


def test_a_repair_whose_webhook_was_lost_ends_the_episode(rig: Rig) -> None:
    connection_id = rig.link()
    rig.set_status(connection_id, "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    episode = rig.ours(connection_id).episode_id
    rig.downstream()
    rig.lose_next(1)
    rig.set_status(connection_id, "ACTIVE")

    result = rig.run()

    assert result["drift"] == {"MissedRepair": 1}
    ours = rig.ours(connection_id)
    assert (ours.status, ours.episode_id) == ("ACTIVE", None)
    (repaired,) = rig.downstream()
    assert repaired["detail-type"] == "Connection Attention Ended"
    assert (repaired["detail"]["episodeId"], repaired["detail"]["resolution"]) == (episode, "REPAIRED")


def test_a_broken_connection_never_heard_of_is_imported_with_its_owner(rig: Rig) -> None:
    rig.lose_next(2)  # its COMPLETED and its STATUS_CHANGE
    connection_id = rig.link("RECONNECT_REQUIRED", "TOKEN_EXPIRED", customer="customer-adopted")
    healthy = rig.link()  # delivered: known and fine, not drift
    assert rig.held(connection_id) is None
    rig.downstream()

    result = rig.run()

    assert result["drift"] == {"UnknownConnection": 1}
    ours = rig.ours(connection_id)
    assert (ours.external_customer_id, ours.status, ours.needs_attention) == (
        "customer-adopted",
        "RECONNECT_REQUIRED",
        True,
    )
    assert rig.announced() == [("Connection Needs Attention", connection_id)]
    assert rig.ours(healthy).status == "ACTIVE"


def test_the_observation_is_stored_as_an_event_of_the_connection(rig: Rig) -> None:
    connection_id = rig.link()
    rig.lose_next(1)
    rig.set_status(connection_id, "RECONNECT_REQUIRED", "LOGIN_REQUIRED")

    result = rig.run()

    ours = rig.ours(connection_id)
    assert ours.last_event_id == f"drift#{result['runId']}#{connection_id}"
    item = boto3.client("dynamodb").get_item(
        TableName=rig.aws.table_name, Key={"pk": {"S": f"EVENT#{ours.last_event_id}"}, "sk": {"S": "EVENT"}}
    )["Item"]
    body = json.loads(item["rawBody"]["S"])
    assert item["eventType"]["S"] == "CONNECTION_OBSERVED"
    assert (body["source"], body["drift"], body["connection"]["status"]) == (
        "drift",
        "MissedBreak",
        "RECONNECT_REQUIRED",
    )
    assert "serviceProviderDetails" not in item["rawBody"]["S"]


def test_an_observation_older_than_the_newest_event_changes_nothing(rig: Rig) -> None:
    connection_id = rig.link()
    rig.lose_next(1)
    rig.set_status(connection_id, "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    before = rig.ours(connection_id)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)  # read before the webhook we did get was stamped

    outcome = rig.reconciler(clock=lambda: an_hour_ago).run(Mode.DRIFT, remaining_seconds=lambda: 900)

    assert (outcome.drift, outcome.complete) == (Counter(), True)
    assert rig.ours(connection_id) == before


def test_only_open_connections_the_listing_did_not_return_are_read_one_by_one(rig: Rig) -> None:
    still_broken = [rig.link("RECONNECT_REQUIRED", "LOGIN_REQUIRED") for _ in range(2)]
    healed = rig.link("RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    rig.link()  # healthy at both ends: neither listed nor read
    rig.lose_next(1)
    rig.set_status(healed, "ACTIVE")
    requests: list[str] = []
    counting = httpx.HTTPTransport()
    client = MeldClient(
        rig.base_url,
        lambda: SIM_KEY,
        max_attempts=1,
        transport=_Recording(counting, requests),
    )

    outcome = rig.reconciler(client=client).run(Mode.DRIFT, remaining_seconds=lambda: 900)

    assert outcome.drift == Counter({DriftKind.MISSED_REPAIR: 1})
    assert requests == ["/bank-linking/connections", f"/bank-linking/connections/{healed}"]
    assert (outcome.pages, outcome.checked, outcome.meld_requests) == (1, 1, 2)
    assert all(rig.ours(connection_id).needs_attention for connection_id in still_broken)


class _Recording(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, paths: list[str]) -> None:
        self._inner = inner
        self._paths = paths

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._paths.append(request.url.path)
        return self._inner.handle_request(request)


def test_a_run_out_of_time_stores_where_it_stopped_and_the_next_continues(rig: Rig) -> None:
    lost = [rig.link() for _ in range(5)]
    rig.lose_next(5)
    for connection_id in lost:
        rig.set_status(connection_id, "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    budget = iter([900.0, 1.0])  # time for one page, then less than the reserve

    cut = rig.reconciler(page_size=2).run(Mode.DRIFT, remaining_seconds=lambda: next(budget, 1.0))
    rest = rig.reconciler(page_size=2).run(Mode.DRIFT, remaining_seconds=lambda: 900)
    after = rig.reconciler(page_size=2).run(Mode.DRIFT, remaining_seconds=lambda: 900)

    assert (cut.complete, cut.stopped, cut.pages, sum(cut.drift.values())) == (False, "TIME_BUDGET", 1, 2)
    assert (rest.complete, rest.run_id, sum(rest.drift.values())) == (True, cut.run_id, 3)
    assert rest.pages == 2  # continued after the first page, not from the start
    assert (after.complete, sum(after.drift.values())) == (True, 0)
    assert after.run_id != cut.run_id  # the finished run cleared its progress
    assert all(rig.ours(connection_id).needs_attention for connection_id in lost)


class _FailingAfterFirstPage(httpx.BaseTransport):
    """Real HTTP to the simulator; once the first page is answered, Meld's next answers are ``arm``'s fault."""

    def __init__(self, arm: Callable[[], None]) -> None:
        self._inner = httpx.HTTPTransport()
        self._arm: Callable[[], None] | None = arm

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if self._arm is not None:
            self._arm()
            self._arm = None
        return response


@pytest.mark.parametrize(
    ("mode", "extra"),
    [("429", {"retry_after": 7}), ("500", {}), ("timeout", {})],
    ids=["rate-limited", "server-error", "timeout"],
)
def test_meld_failing_mid_run_stops_it_after_the_last_page_done_and_the_next_run_goes_on_from_there(
    rig: Rig, mode: str, extra: dict[str, Any]
) -> None:
    lost = [rig.link() for _ in range(4)]
    rig.lose_next(4)
    for connection_id in lost:
        rig.set_status(connection_id, "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    waited: list[float] = []

    def client(transport: httpx.BaseTransport | None = None) -> MeldClient:
        # Two attempts per call, each given 0.3 s; waits recorded instead of slept.
        return MeldClient(
            rig.base_url, lambda: SIM_KEY, max_attempts=2, timeout=0.3, transport=transport, sleep=waited.append
        )

    # Both attempts at the second page fail.
    failing = _FailingAfterFirstPage(lambda: rig.sim.add_fault("list", mode, count=2, **extra))
    stopped = rig.reconciler(page_size=2, client=client(failing)).run(Mode.DRIFT, remaining_seconds=lambda: 900)
    finished = rig.reconciler(page_size=2, client=client()).run(Mode.DRIFT, remaining_seconds=lambda: 900)

    assert (stopped.complete, stopped.stopped, stopped.pages, sum(stopped.drift.values())) == (
        False,
        "MELD_UNAVAILABLE",
        1,
        2,
    )
    assert (finished.complete, finished.run_id, finished.pages, sum(finished.drift.values())) == (
        True,
        stopped.run_id,
        1,
        2,
    )
    assert all(rig.ours(connection_id).needs_attention for connection_id in lost)
    if mode == "429":
        assert waited == [7]  # Meld's Retry-After, not our backoff


def test_backfill_imports_every_connection_meld_has_once(rig: Rig) -> None:
    rig.lose_next(8)  # four connections linked before this stack was deployed
    adopted = [rig.link(customer=f"customer-{n}") for n in range(3)]
    broken = rig.link("RECONNECT_REQUIRED", "LOGIN_REQUIRED", customer="customer-9")
    known = rig.link()
    rig.downstream()

    first = rig.run({"mode": "backfill"})
    again = rig.run({"mode": "backfill"})

    assert (first["imported"], first["drift"], first["complete"]) == (4, {}, True)
    assert (again["imported"], again["drift"]) == (0, {})
    for number, connection_id in enumerate(adopted):
        ours = rig.ours(connection_id)
        assert (ours.external_customer_id, ours.status) == (f"customer-{number}", "ACTIVE")
    assert rig.ours(broken).needs_attention
    assert rig.ours(known).version == 2  # untouched: COMPLETED, then ACTIVE
    assert rig.announced() == [("Connection Needs Attention", broken)]


def test_an_unknown_mode_is_refused_before_any_work(rig: Rig) -> None:
    connection_id = rig.link()
    rig.lose_next(1)
    rig.set_status(connection_id, "RECONNECT_REQUIRED")

    with pytest.raises(reconciler_app.InvalidRequest, match='mode must be one of "drift", "backfill"'):
        rig.run({"mode": "everything"})

    assert rig.ours(connection_id).status == "ACTIVE"


def test_drift_is_counted_by_kind_and_in_total(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    broken, healed = rig.link(), rig.link("RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    rig.lose_next(2)
    rig.set_status(broken, "RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    rig.set_status(healed, "ACTIVE")
    capsys.readouterr()

    rig.run()

    counted: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and "ReconciliationDrift" in line:
            document = json.loads(line)
            value = document["ReconciliationDrift"]
            counted[document.get("Kind", "total")] = value[0] if isinstance(value, list) else value
    assert counted == {"total": 2, "MissedBreak": 1, "MissedRepair": 1}


def test_a_run_out_of_time_among_the_open_connections_goes_on_after_the_last_one_read(rig: Rig) -> None:
    healed = [rig.link("RECONNECT_REQUIRED", "LOGIN_REQUIRED") for _ in range(4)]
    rig.lose_next(4)
    for connection_id in healed:
        rig.set_status(connection_id, "ACTIVE")
    budget = iter([900.0, 900.0, 900.0, 1.0])  # the listing, then time for two single reads
    paths: list[str] = []
    client = MeldClient(
        rig.base_url, lambda: SIM_KEY, max_attempts=1, transport=_Recording(httpx.HTTPTransport(), paths)
    )

    cut = rig.reconciler(client=client).run(Mode.DRIFT, remaining_seconds=lambda: next(budget, 1.0))
    read_first = [path for path in paths if path != "/bank-linking/connections"]
    paths.clear()
    rest = rig.reconciler(client=client).run(Mode.DRIFT, remaining_seconds=lambda: 900)
    read_then = [path for path in paths if path != "/bank-linking/connections"]

    assert (cut.stopped, cut.checked, rest.complete, rest.checked) == ("TIME_BUDGET", 2, True, 2)
    assert not set(read_first) & set(read_then)  # each open connection read once across the two runs
    assert sorted(p.rsplit("/", 1)[1] for p in read_first + read_then) == sorted(healed)
    stored = boto3.client("dynamodb").get_item(
        TableName=rig.aws.table_name, Key={"pk": {"S": "RECONCILE#drift"}, "sk": {"S": "PROGRESS"}}
    )
    assert "Item" not in stored  # the finished run cleared where it had stopped


def test_meld_failing_on_a_single_read_stops_the_run_there(rig: Rig) -> None:
    healed = rig.link("RECONNECT_REQUIRED", "LOGIN_REQUIRED")
    rig.lose_next(1)
    rig.set_status(healed, "ACTIVE")
    rig.sim.add_fault("get", "500", count=1)

    outcome = rig.reconciler().run(Mode.DRIFT, remaining_seconds=lambda: 900)

    assert (outcome.complete, outcome.stopped, outcome.checked) == (False, "MELD_UNAVAILABLE", 0)
    stored = boto3.client("dynamodb").get_item(
        TableName=rig.aws.table_name, Key={"pk": {"S": "RECONCILE#drift"}, "sk": {"S": "PROGRESS"}}
    )["Item"]
    assert json.loads(stored["progress"]["S"])["listing_done"] is True  # it stopped among the single reads
    assert rig.ours(healed).needs_attention  # unchanged until the next run reads it


def test_open_connections_meld_does_not_know_are_counted_and_left_as_they_are(rig: Rig) -> None:
    known = DynamoDBKnownConnections(boto3.client("dynamodb"), rig.aws.table_name)
    for connection_id in ("gone-1", "gone-2"):
        DynamoDBConnectionStore(boto3.client("dynamodb"), rig.aws.table_name, event_ttl=timedelta(days=1)).save_event(
            _observed(connection_id),
            lease_until=datetime.now(UTC),
            connection=Connection(
                connection_id=connection_id,
                external_customer_id=CUSTOMER,
                status="RECONNECT_REQUIRED",
                episode_id=f"ep-{connection_id}",
                attention_since=datetime.now(UTC),
            ),
        )

    outcome = rig.reconciler().run(Mode.DRIFT, remaining_seconds=lambda: 900)

    assert (outcome.unknown_to_meld, outcome.drift, outcome.complete) == (2, Counter(), True)
    assert all(c.needs_attention for c in known.get_connections(["gone-1", "gone-2"]).values())


def _observed(connection_id: str) -> Any:
    from connection_repair.outbox.ports import StoredEvent

    return StoredEvent(
        event_id=f"seed-{connection_id}",
        event_type="BANK_LINKING_CONNECTION_STATUS_CHANGE",
        event_time=datetime.now(UTC) - timedelta(hours=1),
        connection_id=connection_id,
        received_at=datetime.now(UTC),
        retry_count=0,
        raw_body="{}",
    )


def test_a_listing_that_does_not_say_what_remains_is_paged_until_a_short_page(
    aws: LocalResources, downstream: Callable[[], list[dict[str, Any]]]
) -> None:
    from tests.reconcile_support import meld_connection
    from tests.repair_api_support import MeldStandIn, meld_json

    broken = [meld_connection(f"adopted-{n}", "RECONNECT_REQUIRED", "LOGIN_REQUIRED") for n in range(3)]
    meld = MeldStandIn()

    def listing(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        rest = [c for c in broken if after is None or c["key"] > after]
        return meld_json(200, {"connections": rest[:2]})  # no count, no remaining

    meld.respond("GET", "/bank-linking/connections", listing)
    client = MeldClient("https://meld.invalid", lambda: "key", transport=httpx.MockTransport(meld))
    rig = Rig(aws, SimulatorClient("http://127.0.0.1:9"), "https://meld.invalid", downstream)

    outcome = rig.reconciler(client=client, page_size=2).run(Mode.DRIFT, remaining_seconds=lambda: 900)

    assert (outcome.pages, outcome.drift[DriftKind.UNKNOWN_CONNECTION], outcome.complete) == (2, 3, True)
