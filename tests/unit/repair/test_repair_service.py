"""The Repair API's use cases on in-memory fakes: ownership, the local 409, recording attempts under concurrency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from connection_repair.domain.connection import Connection
from connection_repair.domain.errors import ConcurrentUpdate
from connection_repair.domain.status_policy import Action
from connection_repair.preferences.model import NotificationPreferences, StoredPreferences
from connection_repair.repair.ports import MeldFailure, MeldFailureKind
from connection_repair.repair.service import (
    ConnectionNotFound,
    NotRepairable,
    RepairService,
    StartRejected,
    StartRequest,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class FakeStore:
    def __init__(self, *connections: Connection) -> None:
        self.items = {c.connection_id: c for c in connections}
        self.preferences: dict[str, StoredPreferences] = {}
        self.conflicts = 0  # writes to refuse as concurrent, to simulate webhooks landing in between

    def get_connection(self, connection_id: str) -> Connection | None:
        return self.items.get(connection_id)

    def list_connections(self, external_customer_id: str) -> list[Connection]:
        return [c for c in self.items.values() if c.external_customer_id == external_customer_id]

    def save_connection(self, connection: Connection, *, expected_version: int | None) -> None:
        current = self.items.get(connection.connection_id)
        if self.conflicts:
            self.conflicts -= 1
            if current is not None:
                self.items[current.connection_id] = current.model_copy(update={"version": current.version + 1})
            raise ConcurrentUpdate(connection.connection_id)
        if (current.version if current else None) != expected_version:
            raise ConcurrentUpdate(connection.connection_id)
        self.items[connection.connection_id] = connection

    def get_preferences(self, external_customer_id: str) -> StoredPreferences | None:
        return self.preferences.get(external_customer_id)

    def put_preferences(self, preferences: StoredPreferences) -> None:
        self.preferences[preferences.external_customer_id] = preferences


@dataclass
class Grant:
    connection_id: str
    connect_token: str = "opaque-token"
    widget_url: str = "https://widget"
    institution_id: str | None = "inst-1"
    customer_id: str | None = "meld-customer"


class FakeMeld:
    def __init__(self, failure: MeldFailure | None = None) -> None:
        self.failure = failure
        self.calls: list[str] = []

    def repair(self, connection_id: str) -> Grant:
        self.calls.append(f"repair {connection_id}")
        if self.failure:
            raise self.failure
        return Grant(connection_id)

    def start(self, external_customer_id: str, *, institution_id: str | None, products: Sequence[str] | None) -> Grant:
        self.calls.append(f"start {external_customer_id}")
        if self.failure:
            raise self.failure
        return Grant("new-1", institution_id=None)

    def delete(self, connection_id: str) -> None:
        self.calls.append(f"delete {connection_id}")


def broken(connection_id: str = "conn-1", customer: str = "cust-1", **fields: object) -> Connection:
    values: dict[str, object] = {
        "connection_id": connection_id,
        "external_customer_id": customer,
        "status": "RECONNECT_REQUIRED",
        "action": Action.REPAIR,
        "version": 1,
    }
    return Connection.model_validate(values | fields)


def service(store: FakeStore, meld: FakeMeld | None = None) -> RepairService:
    return RepairService(connections=store, preferences=store, meld=meld or FakeMeld(), clock=lambda: NOW)


def test_repair_records_the_attempt_and_reports_when_the_opaque_token_expires():
    store = FakeStore(broken())
    session = service(store).repair("cust-1", "conn-1")
    # Not a JWT: the documented 3 hours.
    assert session.expires_at == NOW + timedelta(hours=3)
    stored = store.items["conn-1"]
    assert (stored.repair_attempts, stored.repair_pending, stored.last_repair_at, stored.version) == (1, True, NOW, 2)


def test_the_attempt_survives_concurrent_webhooks():
    store = FakeStore(broken())
    store.conflicts = 2
    service(store).repair("cust-1", "conn-1")
    assert store.items["conn-1"].repair_attempts == 1
    assert store.items["conn-1"].version == 4  # two concurrent writes, then ours


def test_a_connection_that_never_stops_changing_still_gets_its_token():
    store = FakeStore(broken())
    store.conflicts = 99
    assert service(store).repair("cust-1", "conn-1").connect_token == "opaque-token"
    assert store.items["conn-1"].repair_attempts == 0


def test_someone_elses_connection_is_not_found_and_meld_is_not_asked():
    meld = FakeMeld()
    with pytest.raises(ConnectionNotFound):
        service(FakeStore(broken(customer="other")), meld).repair("cust-1", "conn-1")
    assert meld.calls == []


@pytest.mark.parametrize("status", ["EXPIRED", "DELETED", "IN_PROGRESS"])
def test_not_repairable_statuses_are_refused_locally(status: str):
    meld = FakeMeld()
    with pytest.raises(NotRepairable) as refused:
        service(FakeStore(broken(status=status)), meld).repair("cust-1", "conn-1")
    assert (refused.value.connection_id, refused.value.status, refused.value.action) == (
        "conn-1",
        status,
        Action.START_NEW_CONNECTION,
    )
    assert refused.value.code == "CONNECTION_NOT_REPAIRABLE"
    assert (
        str(refused.value)
        == refused.value.message
        == (f"a connection in status {status} cannot be repaired; start a new connection")
    )
    assert meld.calls == []


@pytest.mark.parametrize("status", ["ACTIVE", "PARTIALLY_ACTIVE"])
def test_a_working_connection_has_nothing_to_repair_and_meld_is_not_asked(status: str):
    meld = FakeMeld()
    healthy = broken(status=status, status_reason=None, action=Action.NONE)
    with pytest.raises(NotRepairable) as refused:
        service(FakeStore(healthy), meld).repair("cust-1", "conn-1")
    assert (refused.value.code, refused.value.action, refused.value.status) == (
        "NOTHING_TO_REPAIR",
        Action.NONE,
        status,
    )
    assert meld.calls == []


@pytest.mark.parametrize(
    ("reason", "action"),
    [("ACCESS_EXPIRING_SOON", Action.RENEW_ACCESS), ("NEW_ACCOUNTS_AVAILABLE", Action.ADD_ACCOUNTS)],
)
def test_an_active_connection_that_asks_something_of_the_customer_is_repaired(reason: str, action: Action):
    store = FakeStore(broken(status="ACTIVE", status_reason=reason, action=action))
    service(store).repair("cust-1", "conn-1")
    assert store.items["conn-1"].repair_attempts == 1


@pytest.mark.parametrize(
    ("meanwhile", "code", "action"),
    [
        ({"status": "ACTIVE", "action": Action.NONE}, "NOTHING_TO_REPAIR", Action.NONE),
        (
            {"status": "RECONNECT_REQUIRED", "action": Action.REPAIR},
            "CONNECTION_NOT_REPAIRABLE",
            Action.START_NEW_CONNECTION,
        ),
    ],
    ids=["healed-meanwhile", "still-broken"],
)
def test_melds_409_is_answered_by_the_stored_state_read_after_it(
    meanwhile: dict[str, object], code: str, action: Action
):
    store = FakeStore(broken())

    class HealedWhileAsking(FakeMeld):
        def repair(self, connection_id: str) -> Grant:
            # Meld's ACTIVE webhook lands while the repair request is on its way; Meld then answers 409.
            store.items[connection_id] = broken(**meanwhile, version=2)
            raise MeldFailure(MeldFailureKind.CONFLICT, "not repairable")

    with pytest.raises(NotRepairable) as refused:
        service(store, HealedWhileAsking()).repair("cust-1", "conn-1")
    assert (refused.value.code, refused.value.action, refused.value.status) == (code, action, meanwhile["status"])


@pytest.mark.parametrize(
    ("kind", "raised"),
    [
        (MeldFailureKind.NOT_FOUND, ConnectionNotFound),
        (MeldFailureKind.CONFLICT, NotRepairable),
        (MeldFailureKind.UNAVAILABLE, MeldFailure),
        (MeldFailureKind.MISCONFIGURED, MeldFailure),
    ],
)
def test_meld_failures_on_repair(kind: MeldFailureKind, raised: type[Exception]):
    store = FakeStore(broken())
    with pytest.raises(raised):
        service(store, FakeMeld(MeldFailure(kind, "x"))).repair("cust-1", "conn-1")
    assert store.items["conn-1"].repair_attempts == 0


@pytest.mark.parametrize("kind", [MeldFailureKind.REJECTED, MeldFailureKind.NOT_FOUND, MeldFailureKind.CONFLICT])
def test_meld_refusing_a_start_is_the_callers_problem_with_melds_words_kept_for_support(kind: MeldFailureKind):
    failure = MeldFailure(kind, "bad institution", code="INVALID_INSTITUTION", request_id="req-7")
    with pytest.raises(StartRejected) as refused:
        service(FakeStore(), FakeMeld(failure)).start("cust-1", StartRequest(institution_id="nope"))
    assert (str(refused.value), refused.value.meld_code, refused.value.request_id) == (
        "bad institution",
        "INVALID_INSTITUTION",
        "req-7",
    )


@pytest.mark.parametrize("kind", [MeldFailureKind.UNAVAILABLE, MeldFailureKind.MISCONFIGURED])
def test_meld_failing_a_start_is_not_the_callers_problem(kind: MeldFailureKind):
    with pytest.raises(MeldFailure) as failed:
        service(FakeStore(), FakeMeld(MeldFailure(kind, "x"))).start("cust-1", StartRequest())
    assert not isinstance(failed.value, StartRejected)


def test_a_start_answers_the_new_connection_and_a_token_that_expires():
    session = service(FakeStore()).start("cust-1", StartRequest(institution_id="inst-9"))
    assert (session.connection_id, session.institution_id, session.replaces_connection_id) == ("new-1", "inst-9", None)
    assert (session.connect_token, session.widget_url) == ("opaque-token", "https://widget")
    assert session.expires_at == NOW + timedelta(hours=3)


@pytest.mark.parametrize(
    ("institution", "expected"),
    [
        (None, ("inst-old", "Chase")),  # the same bank: its name carries over
        ("inst-old", ("inst-old", "Chase")),
        ("inst-other", ("inst-other", None)),  # another bank: the name comes with its first webhook
    ],
)
def test_a_replacement_is_stored_in_progress_with_the_connection_it_replaces(
    institution: str | None, expected: tuple[str | None, str | None]
):
    store = FakeStore(broken(institution_id="inst-old", institution_name="Chase"))
    session = service(store).start("cust-1", StartRequest(institution_id=institution, replaces_connection_id="conn-1"))
    assert session.replaces_connection_id == "conn-1"
    fresh = store.items["new-1"]
    assert (fresh.external_customer_id, fresh.customer_id) == ("cust-1", "meld-customer")
    assert (fresh.institution_id, fresh.institution_name) == expected
    assert (fresh.status, fresh.action, fresh.replaces_connection_id, fresh.version) == (
        "IN_PROGRESS",
        Action.NONE,
        "conn-1",
        1,
    )
    assert store.items["conn-1"] == broken(institution_id="inst-old", institution_name="Chase")  # untouched


def test_only_the_callers_own_connection_can_be_replaced():
    meld = FakeMeld()
    with pytest.raises(ConnectionNotFound):
        service(FakeStore(broken(customer="other")), meld).start(
            "cust-1", StartRequest(replaces_connection_id="conn-1")
        )
    assert meld.calls == []


def test_a_replacement_is_added_to_a_connection_a_webhook_already_created():
    store = FakeStore(broken(), broken("new-1", status="IN_PROGRESS", action=Action.NONE, version=3))
    session = service(store).start("cust-1", StartRequest(replaces_connection_id="conn-1"))
    assert session.replaces_connection_id == "conn-1"
    assert (store.items["new-1"].replaces_connection_id, store.items["new-1"].version) == ("conn-1", 4)


class AppearsLate(FakeStore):
    """The new connection's item is not readable at once after the webhook's write refused ours."""

    def __init__(self, *connections: Connection, misses: int) -> None:
        super().__init__(*connections)
        self.misses = misses

    def get_connection(self, connection_id: str) -> Connection | None:
        if connection_id == "new-1" and self.misses:
            self.misses -= 1
            return None
        return super().get_connection(connection_id)


def test_a_replacement_waits_for_the_webhooks_connection_and_survives_its_changes():
    store = AppearsLate(broken(), broken("new-1", status="IN_PROGRESS", action=Action.NONE, version=3), misses=1)
    store.conflicts = 2  # two webhooks change the new connection while we write: version 3 -> 5, ours 6
    service(store).start("cust-1", StartRequest(replaces_connection_id="conn-1"))
    assert (store.items["new-1"].replaces_connection_id, store.items["new-1"].version) == ("conn-1", 6)


def test_a_replacement_that_cannot_be_written_fails_the_request():
    store = FakeStore(broken(), broken("new-1", status="IN_PROGRESS", action=Action.NONE, version=3))
    store.conflicts = 99
    with pytest.raises(ConcurrentUpdate):
        service(store).start("cust-1", StartRequest(replaces_connection_id="conn-1"))


def test_the_list_puts_the_oldest_problem_first():
    since = NOW - timedelta(days=2)
    store = FakeStore(
        broken("b", attention_since=NOW, episode_id="e2"),
        broken("a", status="ACTIVE", action=Action.NONE),
        broken("c", attention_since=since, episode_id="e1"),
        broken("d", customer="other"),
    )
    assert [c.connection_id for c in service(store).list_connections("cust-1")] == ["c", "b", "a"]


def test_preferences_are_stored_under_the_caller_with_the_time():
    store = FakeStore()
    wanted = NotificationPreferences(email="a@example.com", timezone="Europe/Berlin")
    assert service(store).set_preferences("cust-1", wanted) == wanted
    assert service(store).get_preferences("cust-1") == wanted
    assert service(store).get_preferences("cust-2") == NotificationPreferences()
    assert store.preferences["cust-1"].updated_at == NOW
