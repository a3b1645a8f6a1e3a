"""Institution incidents: many of one bank's connections breaking together hold the customers' first messages, the
bus is told when the incident starts and ends, and the Repair API shows it (moto: the table, SES, the bus)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from connection_repair.adapters.dynamodb.incidents import DynamoDBIncidentStore
from connection_repair.adapters.dynamodb.keys import census_key
from connection_repair.domain.connection import Connection
from connection_repair.domain.incident import (
    IncidentPolicy,
    InstitutionIncident,
    InstitutionIncidentEnded,
    InstitutionIncidentStarted,
    Trigger,
)
from connection_repair.domain.status_policy import Action
from connection_repair.notify.incidents import IncidentWatch
from connection_repair.notify.policy import Deferred, Suppressed
from local.aws_resources import LocalResources
from tests.notifier_support import T0, Clock, NotifierRig, attention, build_notifier, repaired, sent_emails
from tests.repair_api_support import connection as api_connection
from tests.repair_api_support import install_repair_api, store_for
from tests.support import signed_delivery, status_change

POLICY = IncidentPolicy(min_connections=3, share_percent=20, window=timedelta(minutes=15), hold=timedelta(hours=6))
CHASE = "inst-chase"


@pytest.fixture
def rig(aws: LocalResources) -> NotifierRig:
    return build_notifier(aws.table_name, Clock(), incidents=POLICY, bus=aws.event_bus_name)


def census(table_name: str, institution_id: str, connections: int) -> None:
    """The institution's connection count, as ingestion keeps it."""
    item = census_key(institution_id) | {"connections": {"N": str(connections)}}
    boto3.client("dynamodb").put_item(TableName=table_name, Item=item)


def break_connections(
    rig: NotifierRig, count: int, *, first: int = 1, reason: str = "LOGIN_REQUIRED", started: list[int] | None = None
) -> list[Connection]:
    """``count`` Chase connections of as many customers (with email) broken now, and the notifier told of each;
    ``started`` receives how many incidents each break started."""
    broken = []
    for number in range(first, first + count):
        customer = f"customer-{number}"
        rig.preferences(customer, email=f"c{number}@example.com")
        connection = rig.connection(f"conn-{number}", customer=customer, episode_id=f"episode-{number}", reason=reason)
        outcome = rig.notifier.on_needs_attention(attention(connection))
        if started is not None:
            started.append(outcome.incidents["STARTED"])
        broken.append(connection)
    return broken


def heal(rig: NotifierRig, connections: Sequence[Connection]) -> list[int]:
    """The connections are active again and the notifier told; the incidents each repair ended."""
    ended = []
    for connection in connections:
        assert connection.external_customer_id is not None
        rig.repair(connection.connection_id, customer=connection.external_customer_id)
        ended.append(rig.notifier.on_attention_ended(repaired(connection, at=rig.clock.now)).incidents["ENDED"])
    return ended


def incident_events(drain: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [event for event in drain() if event["detail-type"].startswith("Institution Incident")]


def emailed() -> set[str]:
    return {address for message in sent_emails() for address in message.destinations["ToAddresses"]}


def test_a_surge_starts_one_incident_holds_first_messages_and_ends_when_enough_heal(
    rig: NotifierRig, downstream: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given Chase with 10 known connections, and 4 of them breaking within a minute (threshold: 3)
    census(rig.table_name, CHASE, 10)
    started: list[int] = []
    broken = break_connections(rig, 2, started=started)
    assert incident_events(downstream) == []  # two breaks are two customers' problems
    broken += break_connections(rig, 2, first=3, started=started)
    assert started == [0, 0, 1, 0]  # counted by the break that started it

    # Then the third break started an incident, told on the bus once
    [started] = incident_events(downstream)
    assert started["detail-type"] == InstitutionIncidentStarted.DETAIL_TYPE
    assert started["detail"]["institutionId"] == CHASE
    assert started["detail"]["trigger"] == "SURGE"
    assert started["detail"]["broken"] == 3
    assert started["detail"]["threshold"] == 3

    # When the first messages fall due, none goes out: all are held until the hold's end
    rig.clock.at(T0 + timedelta(minutes=6))
    outcome = rig.notifier.sweep()
    assert outcome.deferred[Deferred.INCIDENT] == 4
    assert sent_emails() == []
    held = rig.episode("customer-3", "episode-3")
    assert held is not None
    assert held.due_at == T0 + POLICY.hold

    # When two heal, fewer than the threshold remain broken: the incident ends, told once
    rig.clock.at(T0 + timedelta(minutes=20))
    assert heal(rig, broken[:2]) == [0, 1]
    [ended] = incident_events(downstream)
    assert ended["detail-type"] == InstitutionIncidentEnded.DETAIL_TYPE
    assert ended["detail"]["endedAt"] is not None

    # Then the messages it held are due at once, and the next sweep tells the two still broken, the repaired never
    released = rig.episode("customer-3", "episode-3")
    assert released is not None
    assert released.due_at == T0 + timedelta(minutes=20)
    rig.clock.at(T0 + timedelta(minutes=21))
    rig.notifier.sweep()
    assert emailed() == {"c3@example.com", "c4@example.com"}


def test_when_the_hold_ends_only_the_customers_still_broken_are_told(rig: NotifierRig) -> None:
    census(rig.table_name, CHASE, 10)
    broken = break_connections(rig, 5)
    rig.clock.at(T0 + timedelta(hours=1))
    heal(rig, broken[:1])  # four remain broken: the incident goes on

    # However often the sweep runs, the held messages stay held
    for minutes in range(6, 6 * 60, 25):
        rig.clock.at(T0 + timedelta(minutes=minutes))
        rig.notifier.sweep()
    assert sent_emails() == []

    rig.clock.at(T0 + timedelta(hours=6, minutes=1))
    rig.notifier.sweep()
    assert emailed() == {f"c{number}@example.com" for number in range(2, 6)}
    assert len(sent_emails()) == 4
    # Each says the bank's problem is over and their connection still needs them
    assert all(
        "Chase had a problem that affected many of its customers. It is over, but your connection still needs you."
        in email.body
        for email in sent_emails()
    )


def test_below_the_share_of_the_institution_breaks_are_the_customers_own(rig: NotifierRig) -> None:
    # 100 known connections: 20 % is 20 breaks; 5 are not an incident
    census(rig.table_name, CHASE, 100)
    break_connections(rig, 5)
    rig.clock.at(T0 + timedelta(minutes=6))
    outcome = rig.notifier.sweep()
    assert outcome.deferred[Deferred.INCIDENT] == 0
    assert len(sent_emails()) == 5


def test_breaks_spread_wider_than_the_window_are_no_incident(rig: NotifierRig) -> None:
    census(rig.table_name, CHASE, 10)
    for number in range(1, 4):
        rig.clock.at(T0 + timedelta(minutes=20 * number))
        break_connections(rig, 1, first=number)
    assert DynamoDBIncidentStore(boto3.client("dynamodb"), rig.table_name).incident(CHASE) is None


def test_an_event_delivered_again_counts_its_break_once(rig: NotifierRig) -> None:
    census(rig.table_name, CHASE, 10)  # threshold 3
    broken = break_connections(rig, 2)
    # The bus delivers the second break again (at least once): still two breaks, no incident
    outcome = rig.notifier.on_needs_attention(attention(broken[1]))
    assert outcome.suppressed[Suppressed.DUPLICATE] == 1
    assert DynamoDBIncidentStore(boto3.client("dynamodb"), rig.table_name).incident(CHASE) is None


def test_meld_blaming_the_institution_is_an_incident_at_once_until_none_is_left_broken(
    rig: NotifierRig, downstream: Callable[[], list[dict[str, Any]]]
) -> None:
    census(rig.table_name, CHASE, 1000)
    broken = break_connections(rig, 2, reason="REPAIRING_INSTITUTION")
    [started] = incident_events(downstream)
    assert started["detail"]["trigger"] == Trigger.INSTITUTION_REASON
    assert heal(rig, broken[:1]) == [0]  # one is still broken
    assert heal(rig, broken[1:]) == [1]
    assert [event["detail-type"] for event in incident_events(downstream)] == [InstitutionIncidentEnded.DETAIL_TYPE]


def test_an_episode_older_than_the_incident_is_not_held(rig: NotifierRig) -> None:
    census(rig.table_name, CHASE, 10)
    rig.preferences("early", email="early@example.com")
    early = rig.connection("conn-early", customer="early", episode_id="episode-early", since=T0 - timedelta(hours=1))
    rig.clock.at(T0 - timedelta(hours=1))
    rig.notifier.on_needs_attention(attention(early))
    rig.clock.at(T0)
    break_connections(rig, 3)
    rig.clock.at(T0 + timedelta(minutes=6))
    rig.notifier.sweep()
    assert emailed() == {"early@example.com"}


def test_other_institutions_are_not_held(rig: NotifierRig) -> None:
    census(rig.table_name, CHASE, 10)
    break_connections(rig, 3)
    rig.preferences("wells", email="wells@example.com")
    other = rig.connection("conn-wells", customer="wells", institution="Wells", episode_id="episode-wells")
    rig.notifier.on_needs_attention(attention(other))
    rig.clock.at(T0 + timedelta(minutes=6))
    rig.notifier.sweep()
    assert emailed() == {"wells@example.com"}


class FailingOnce:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.failed = False

    def publish(self, events: Sequence[Any]) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("PutEvents failed")
        self.inner.publish(events)


def test_a_start_the_bus_did_not_take_is_told_the_next_time_the_incident_is_read(
    aws: LocalResources, downstream: Callable[[], list[dict[str, Any]]]
) -> None:
    from connection_repair.adapters.eventbridge import EventBridgePublisher

    store = DynamoDBIncidentStore(boto3.client("dynamodb"), aws.table_name)
    publisher = FailingOnce(EventBridgePublisher(boto3.client("events"), aws.event_bus_name, "connection-repair"))
    watch = IncidentWatch(store=store, publisher=publisher, policy=POLICY, clock=lambda: T0)
    with pytest.raises(RuntimeError):
        watch.on_break(CHASE, "Chase", T0, "REPAIRING_INSTITUTION")
    recorded = store.incident(CHASE)
    assert recorded is not None
    assert not recorded.announced
    assert incident_events(downstream) == []

    current = watch.current(CHASE)
    assert current is not None
    assert [event["detail-type"] for event in incident_events(downstream)] == [InstitutionIncidentStarted.DETAIL_TYPE]
    assert store.incident(CHASE).announced  # type: ignore[union-attr]
    watch.current(CHASE)
    assert incident_events(downstream) == []  # told once


def surge_since(since: datetime) -> InstitutionIncident:
    """Chase's incident as the notifier records it when 30 of its 100 connections broke together."""
    return InstitutionIncident(
        institution_id=CHASE,
        trigger=Trigger.SURGE,
        since=since,
        counted_from=since - POLICY.window,
        hold_until=since + POLICY.hold,
        broken=30,
        threshold=25,
        connections=100,
    )


def test_a_start_raced_by_another_invocation_is_recorded_once(aws: LocalResources) -> None:
    store = DynamoDBIncidentStore(boto3.client("dynamodb"), aws.table_name)
    incident = surge_since(T0)
    assert store.start(incident)
    assert not store.start(incident.model_copy(update={"since": T0 + timedelta(seconds=1)}))
    assert store.end(incident, T0 + timedelta(hours=1))
    assert not store.end(incident, T0 + timedelta(hours=2))
    assert store.count(incident, 1) is None  # an ended incident counts nothing more
    assert store.start(incident.model_copy(update={"since": T0 + timedelta(days=1)}))  # a new one may start


def test_the_connection_view_carries_its_institutions_incident(
    aws: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = install_repair_api(aws.table_name, monkeypatch)
    store = store_for(aws.table_name)
    chase = api_connection("conn-chase").model_copy(update={"institution_id": CHASE, "institution_name": "Chase"})
    wells = api_connection("conn-wells").model_copy(update={"institution_id": "inst-wells"})
    for stored in (chase, wells):
        store.save_connection(stored, expected_version=None)
    since = datetime.now(UTC)
    DynamoDBIncidentStore(boto3.client("dynamodb"), aws.table_name).start(surge_since(since))

    status, _, body = api.call("GET", "/connections")
    assert status == 200
    views = {view["connectionId"]: view for view in body["connections"]}
    assert views["conn-chase"]["institutionIncident"] == {
        "since": since.isoformat().replace("+00:00", "Z"),
        "holdUntil": (since + timedelta(hours=6)).isoformat().replace("+00:00", "Z"),
        "trigger": "SURGE",
    }
    assert views["conn-wells"]["institutionIncident"] is None
    status, _, one = api.call("GET", "/connections/conn-chase")
    assert one["institutionIncident"]["trigger"] == "SURGE"


def test_ingestion_counts_each_new_connection_once_in_its_institutions_census(webhook_env: LocalResources) -> None:
    from connection_repair.wiring.webhook import webhook_ingestor

    now = datetime.now(UTC)
    stamp = (now - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    for event_id, connection_id in (("e1", "conn-1"), ("e2", "conn-1"), ("e3", "conn-2")):
        body = status_change(event_id, stamp, "RECONNECT_REQUIRED", "LOGIN_REQUIRED", connection_id=connection_id)
        webhook_ingestor().receive(signed_delivery(body, now=now))
    assert DynamoDBIncidentStore(boto3.client("dynamodb"), webhook_env.table_name).connections("inst-1") == 2


def test_an_incidents_end_releases_only_its_own_held_messages(rig: NotifierRig) -> None:
    # Chase and Wells in incidents started at the same moment: their held messages are due at the same instant
    census(rig.table_name, CHASE, 10)
    census(rig.table_name, "inst-wells", 10)
    chase = break_connections(rig, 3)
    for number in range(10, 13):
        customer = f"customer-{number}"
        rig.preferences(customer, email=f"c{number}@example.com")
        wells = rig.connection(f"conn-{number}", customer=customer, institution="Wells", episode_id=f"episode-{number}")
        rig.notifier.on_needs_attention(attention(wells))
    rig.clock.at(T0 + timedelta(minutes=6))
    assert rig.notifier.sweep().deferred[Deferred.INCIDENT] == 6
    assert len(rig.store.due_exactly(T0 + POLICY.hold)) == 6
    assert rig.store.due_exactly(T0 + POLICY.hold + timedelta(microseconds=1)) == []

    # When Chase's incident ends, only Chase's held messages are due now
    rig.clock.at(T0 + timedelta(minutes=30))
    assert heal(rig, chase[:1]) == [1]
    still_held = {notice.episode_id for notice in rig.store.due_exactly(T0 + POLICY.hold)}
    assert still_held == {"episode-10", "episode-11", "episode-12"}
    rig.clock.at(T0 + timedelta(minutes=31))
    rig.notifier.sweep()
    assert emailed() == {"c2@example.com", "c3@example.com"}


def test_repairs_that_keep_failing_leave_the_connection_counted_as_broken(rig: NotifierRig) -> None:
    census(rig.table_name, CHASE, 10)
    broken = break_connections(rig, 3)
    failed = repaired(broken[0], at=rig.clock.now).model_copy(
        update={"resolution": "REPAIR_FAILED", "status": "RECONNECT_REQUIRED", "action": Action.START_NEW_CONNECTION}
    )
    assert rig.notifier.on_attention_ended(failed).incidents["ENDED"] == 0
    incident = DynamoDBIncidentStore(boto3.client("dynamodb"), rig.table_name).incident(CHASE)
    assert incident is not None
    assert (incident.active, incident.broken) == (True, 3)


def test_breaks_count_within_the_window_by_the_minute_and_expire(aws: LocalResources) -> None:
    store = DynamoDBIncidentStore(boto3.client("dynamodb"), aws.table_name)
    window = timedelta(minutes=15)
    assert store.connections(CHASE) == 0  # no census yet
    assert store.record_break(CHASE, T0, window=window) == 1
    assert store.record_break(CHASE, T0 + timedelta(seconds=59), window=window) == 2
    assert store.record_break(CHASE, T0 + timedelta(minutes=14, seconds=59), window=window) == 3
    assert store.record_break(CHASE, T0 + timedelta(minutes=15), window=window) == 2  # T0's minute has left it
    assert store.record_break("inst-wells", T0, window=window) == 1
    item = boto3.client("dynamodb").get_item(
        TableName=aws.table_name, Key={"pk": {"S": f"INST#{CHASE}"}, "sk": {"S": "BREAKS#2026-11-25T11:30"}}
    )["Item"]
    assert item["breaks"] == {"N": "2"}
    assert int(item["expiresAt"]["N"]) == int((T0 + timedelta(days=1)).timestamp())


def test_an_incidents_start_told_late_leaves_its_end_still_to_tell(aws: LocalResources) -> None:
    store = DynamoDBIncidentStore(boto3.client("dynamodb"), aws.table_name)
    incident = surge_since(T0)
    assert store.start(incident)
    assert store.end(incident, T0 + timedelta(hours=1))
    store.announced(incident)  # the start, told after the end was recorded
    ended = store.incident(CHASE)
    assert ended is not None
    assert not ended.announced
    store.announced(ended)
    assert store.incident(CHASE).announced  # type: ignore[union-attr]


def test_a_repair_of_an_episode_older_than_the_incident_does_not_count_out(rig: NotifierRig) -> None:
    census(rig.table_name, CHASE, 10)
    rig.preferences("early", email="early@example.com")
    early = rig.connection("conn-early", customer="early", episode_id="episode-early", since=T0 - timedelta(hours=1))
    rig.clock.at(T0 - timedelta(hours=1))
    rig.notifier.on_needs_attention(attention(early))
    rig.clock.at(T0)
    break_connections(rig, 3)
    assert heal(rig, [early]) == [0]
    incident = DynamoDBIncidentStore(boto3.client("dynamodb"), rig.table_name).incident(CHASE)
    assert incident is not None
    assert (incident.active, incident.broken) == (True, 3)
    assert incident.institution_name == "Chase"


def test_an_institution_named_by_meld_holds_only_what_broke_since(rig: NotifierRig) -> None:
    census(rig.table_name, CHASE, 1000)
    break_connections(rig, 1)  # a customer's own problem, minutes before
    rig.clock.at(T0 + timedelta(minutes=2))
    rig.preferences("customer-2", email="c2@example.com")
    blamed = rig.connection("conn-2", customer="customer-2", episode_id="episode-2", reason="REPAIRING_INSTITUTION")
    assert rig.notifier.on_needs_attention(attention(blamed)).incidents["STARTED"] == 1
    rig.clock.at(T0 + timedelta(minutes=8))
    outcome = rig.notifier.sweep()
    assert outcome.deferred[Deferred.INCIDENT] == 1
    assert emailed() == {"c1@example.com"}
    assert rig.episode_notes("customer-2", "episode-2") == {"deferred#0": "INCIDENT"}
