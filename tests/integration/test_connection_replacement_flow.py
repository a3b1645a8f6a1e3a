"""Replacing a connection end to end: the API starts the new one, Meld's webhooks complete it, the replacer retires
the old one. Also the failed-repair rule, driven by the API and real webhook deliveries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connection_repair.domain.bus_events import ConnectionReplaced
from connection_repair.domain.status_policy import Action
from connection_repair.ingestion.service import IngestOutcome
from connection_repair.replacement.service import ConnectionReplacer, ReplacementOutcome
from local.aws_resources import LocalResources
from local.make_events import envelope
from tests.repair_api_support import (
    CONNECTION_ID,
    CUSTOMER,
    OTHER_CUSTOMER,
    MeldStandIn,
    RepairApi,
    connection,
    connection_store_for,
    install_repair_api,
    meld_directory,
    meld_error,
    meld_gateway,
    meld_json,
    store_for,
)
from tests.support import LambdaContext, signed_delivery, status_change

DELETE_OLD = ("DELETE", f"/bank-linking/connections/{CONNECTION_ID}")


@pytest.fixture
def api(webhook_env: LocalResources, monkeypatch: pytest.MonkeyPatch) -> RepairApi:
    return install_repair_api(webhook_env.table_name, monkeypatch)


def deliver(body: dict[str, Any]) -> IngestOutcome:
    from connection_repair.wiring.webhook import webhook_ingestor

    return webhook_ingestor().receive(signed_delivery(body, now=datetime.now(UTC))).outcome


def completed(event_id: str, timestamp: str, connection_id: str, customer: str = CUSTOMER) -> dict[str, Any]:
    payload = {
        "connectionId": connection_id,
        "customerId": "meld-customer-1",
        "externalCustomerId": customer,
        "institutionId": "Ntj3AwgdridJc2rtfeheku",
        "institutionName": "Chase",
    }
    return envelope("BANK_LINKING_CONNECTION_COMPLETED", event_id, timestamp, payload)


def replacer(table_name: str, event_bus_name: str, meld: MeldStandIn) -> ConnectionReplacer:
    import boto3

    from connection_repair.adapters.eventbridge import EventBridgePublisher

    publisher = EventBridgePublisher(boto3.client("events"), event_bus_name, "connection-repair")
    return ConnectionReplacer(
        store=connection_store_for(table_name),
        publisher=publisher,
        meld=meld_gateway(meld),
        directory=meld_directory(meld),
    )


def replacer_event(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Connection Replaced",
        "source": "connection-repair",
        "account": "123456789012",
        "time": "2026-11-25T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def test_a_replacement_retires_the_old_connection_once_the_new_one_completes(
    api: RepairApi,
    webhook_env: LocalResources,
    downstream: Callable[[], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
):
    # Given the caller's connection needs a repair (an open episode)
    broken = status_change(
        "evt-1",
        "2026-11-25T10:00:00Z",
        "RECONNECT_REQUIRED",
        "LOGIN_REQUIRED",
        connection_id=CONNECTION_ID,
        external_customer_id=CUSTOMER,
    )
    assert deliver(broken) == IngestOutcome.ACCEPTED
    [needs_attention] = downstream()
    assert needs_attention["detail-type"] == "Connection Needs Attention"

    # When the app starts a new connection replacing it, and Meld reports the new one completed
    status, _, body = api.call("POST", "/connections", {"replacesConnectionId": CONNECTION_ID})
    assert status == 201
    new_id = body["connectionId"]
    assert deliver(completed("evt-2", "2026-11-25T10:30:00Z", new_id)) == IngestOutcome.ACCEPTED
    # (a completion alone does not say it works: Meld's duplicate completes too)
    assert downstream() == []
    # and the status change to ACTIVE sent with it, stamped a moment before
    active = status_change(
        "evt-3", "2026-11-25T10:29:59Z", "ACTIVE", connection_id=new_id, external_customer_id=CUSTOMER
    )
    assert deliver(active) == IngestOutcome.ACCEPTED

    # Then "Connection Replaced" goes out through the webhook's outbox
    [replaced] = downstream()
    assert replaced["detail-type"] == "Connection Replaced"
    assert replaced["detail"] == {
        "version": 1,
        "eventId": "evt-3",  # the Meld event that completed the replacement
        "connectionId": new_id,
        "replacedConnectionId": CONNECTION_ID,
        "externalCustomerId": CUSTOMER,
        "eventTime": "2026-11-25T10:29:59Z",
        "inactiveDuplicate": False,
    }

    # And the replacer, given that event, deletes the old one at Meld and ends its episode
    from functions.connection_replacer import app as replacer_app

    meld = MeldStandIn()
    monkeypatch.setattr(
        replacer_app, "connection_replacer", lambda: replacer(webhook_env.table_name, webhook_env.event_bus_name, meld)
    )
    answer = replacer_app.lambda_handler(replacer_event(replaced["detail"]), LambdaContext())
    assert answer == {"outcome": "retired"}
    assert len(meld.calls(*DELETE_OLD)) == 1
    [ended] = downstream()
    assert ended["detail-type"] == "Connection Attention Ended"
    assert (ended["detail"]["resolution"], ended["detail"]["episodeId"]) == (
        "SUPERSEDED",
        needs_attention["detail"]["episodeId"],
    )
    old = api.call("GET", f"/connections/{CONNECTION_ID}")[2]
    assert (old["supersededBy"], old["action"], old["attentionSince"]) == (new_id, "NONE", None)
    assert api.call("GET", f"/connections/{new_id}")[2]["status"] == "ACTIVE"

    # A retried delivery of the same event changes and publishes nothing more
    assert replacer_app.lambda_handler(replacer_event(replaced["detail"]), LambdaContext()) == {
        "outcome": "already_retired"
    }
    assert downstream() == []

    # And Meld's DELETED webhook for the old one, when it comes, keeps it quiet
    deleted = envelope(
        "BANK_LINKING_CONNECTION_DELETED",
        "evt-4",
        "2026-11-25T10:31:00Z",
        {"connectionId": CONNECTION_ID, "externalCustomerId": CUSTOMER},
    )
    assert deliver(deleted) == IngestOutcome.ACCEPTED
    assert downstream() == []
    assert api.call("GET", f"/connections/{CONNECTION_ID}")[2]["action"] == "NONE"


def test_the_replacer_treats_an_old_connection_meld_already_deleted_as_done(
    webhook_env: LocalResources, downstream: Callable[[], list[dict[str, Any]]]
):
    store = store_for(webhook_env.table_name)
    store.save_connection(connection(), expected_version=None)
    meld = MeldStandIn()
    meld.respond(*DELETE_OLD, meld_error(409, "ALREADY_DELETED"))
    replaced = ConnectionReplaced(
        connection_id="new-1",
        replaced_connection_id=CONNECTION_ID,
        external_customer_id=CUSTOMER,
        event_time=datetime.now(UTC),
    )
    outcome = replacer(webhook_env.table_name, webhook_env.event_bus_name, meld).replace(replaced)
    assert outcome == ReplacementOutcome.REPLACED
    assert store.get_connection(CONNECTION_ID).superseded_by == "new-1"  # type: ignore[union-attr]


def test_the_replacer_never_touches_another_customers_connection(
    webhook_env: LocalResources, downstream: Callable[[], list[dict[str, Any]]]
):
    store = store_for(webhook_env.table_name)
    store.save_connection(connection(customer=OTHER_CUSTOMER), expected_version=None)
    meld = MeldStandIn()
    replaced = ConnectionReplaced(
        connection_id="new-1",
        replaced_connection_id=CONNECTION_ID,
        external_customer_id=CUSTOMER,
        event_time=datetime.now(UTC),
    )
    assert (
        replacer(webhook_env.table_name, webhook_env.event_bus_name, meld).replace(replaced)
        == ReplacementOutcome.SKIPPED
    )
    assert meld.requests == []
    assert store.get_connection(CONNECTION_ID).superseded_by is None  # type: ignore[union-attr]


def duplicate_of(meld: MeldStandIn, new_id: str, kept: str | None) -> ConnectionReplaced:
    """Meld says ``new_id`` is an inactive duplicate, and keeps ``kept`` active."""
    body = {"id": new_id, "status": "PARTIALLY_ACTIVE", "statusReason": "INACTIVE_DUPLICATE"}
    meld.respond(
        "GET", f"/bank-linking/connections/{new_id}", meld_json(200, body | {"activeDuplicateConnectionId": kept})
    )
    return ConnectionReplaced(
        connection_id=new_id,
        replaced_connection_id=CONNECTION_ID,
        external_customer_id=CUSTOMER,
        event_time=datetime.now(UTC),
        inactive_duplicate=True,
    )


DUPLICATES = {
    # The customer linked the same bank again and Meld keeps the old connection: not replaced, not deleted
    "Meld keeps the old one": (CONNECTION_ID, ReplacementOutcome.KEPT, [], None),
    # Meld keeps a third one: only the old connection is deleted, neither the kept one nor the duplicate
    "Meld keeps another": (
        "kept-active",
        ReplacementOutcome.REPLACED,
        [f"/bank-linking/connections/{CONNECTION_ID}"],
        "kept-active",
    ),
    "Meld names none": (None, ReplacementOutcome.SKIPPED, [], None),
}


@pytest.mark.parametrize(("kept", "outcome", "deleted", "superseded_by"), DUPLICATES.values(), ids=DUPLICATES.keys())
def test_an_inactive_duplicate_never_deletes_the_connection_meld_keeps(
    webhook_env: LocalResources,
    kept: str | None,
    outcome: ReplacementOutcome,
    deleted: list[str],
    superseded_by: str | None,
):
    store = store_for(webhook_env.table_name)
    store.save_connection(connection(), expected_version=None)
    meld = MeldStandIn()
    replaced = duplicate_of(meld, "new-dup", kept=kept)
    assert replacer(webhook_env.table_name, webhook_env.event_bus_name, meld).replace(replaced) == outcome
    # Meld is asked which connection it keeps, and only then is anything deleted
    assert [request.method for request in meld.requests] == ["GET"] + ["DELETE"] * len(deleted)
    assert [request.url.path for request in meld.requests if request.method == "DELETE"] == deleted
    assert store.get_connection(CONNECTION_ID).superseded_by == superseded_by  # type: ignore[union-attr]


def test_meld_down_during_retirement_raises_so_the_invocation_is_retried(webhook_env: LocalResources):
    from connection_repair.repair.ports import MeldFailure

    store = store_for(webhook_env.table_name)
    store.save_connection(connection(), expected_version=None)
    meld = MeldStandIn()
    meld.respond(*DELETE_OLD, meld_error(503))
    replaced = ConnectionReplaced(
        connection_id="new-1",
        replaced_connection_id=CONNECTION_ID,
        external_customer_id=CUSTOMER,
        event_time=datetime.now(UTC),
    )
    with pytest.raises(MeldFailure):
        replacer(webhook_env.table_name, webhook_env.event_bus_name, meld).replace(replaced)
    assert store.get_connection(CONNECTION_ID).superseded_by is None  # type: ignore[union-attr]


def test_a_retirement_whose_publisher_died_is_finished_by_a_later_retry_not_dropped(
    webhook_env: LocalResources, downstream: Callable[[], list[dict[str, Any]]]
):
    import boto3

    from connection_repair.adapters.eventbridge import EventBridgePublisher
    from connection_repair.outbox.outbox import DeliveryInProgress

    class DyingPublisher(EventBridgePublisher):
        def publish(self, events: Any) -> None:
            raise RuntimeError("process died after the commit")

    # Given an old connection with an open episode, retired by an invocation that died before publishing
    store = store_for(webhook_env.table_name)
    store.save_connection(connection(), expected_version=None)
    meld = MeldStandIn()
    replaced = ConnectionReplaced(
        connection_id="new-1",
        replaced_connection_id=CONNECTION_ID,
        external_customer_id=CUSTOMER,
        event_time=datetime.now(UTC),
    )
    started = datetime.now(UTC)

    def replacer_at(moment: datetime, publisher: EventBridgePublisher | None = None) -> ConnectionReplacer:
        bus = publisher or EventBridgePublisher(boto3.client("events"), webhook_env.event_bus_name, "connection-repair")
        return ConnectionReplacer(
            store=connection_store_for(webhook_env.table_name),
            publisher=bus,
            meld=meld_gateway(meld),
            directory=meld_directory(meld),
            clock=lambda: moment,
        )

    dying = DyingPublisher(boto3.client("events"), webhook_env.event_bus_name, "connection-repair")
    with pytest.raises(RuntimeError):
        replacer_at(started, dying).replace(replaced)

    # When Lambda retries while the dead invocation's publishing lease still runs, it fails again (and is retried)
    # rather than reporting success with the episode's end unannounced
    with pytest.raises(DeliveryInProgress):
        replacer_at(started).replace(replaced)
    assert downstream() == []

    # Then the retry after the lease lapsed publishes it, once
    assert replacer_at(started + timedelta(minutes=1)).replace(replaced) == ReplacementOutcome.ALREADY_REPLACED
    announced = downstream()
    assert [(event["detail-type"], event["detail"]["resolution"]) for event in announced] == [
        ("Connection Attention Ended", "SUPERSEDED")
    ]
    assert replacer_at(started + timedelta(minutes=2)).replace(replaced) == ReplacementOutcome.ALREADY_REPLACED
    assert downstream() == []


# --- Failed repairs, through the API and Meld's webhooks ------------------------------------------------------------


def test_repairs_that_keep_failing_turn_the_action_into_start_new_connection(
    api: RepairApi, downstream: Callable[[], list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
):
    from connection_repair.wiring.webhook import webhook_ingestor

    monkeypatch.setenv("MAX_FAILED_REPAIRS", "2")
    webhook_ingestor.cache_clear()
    start = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert (
        deliver(
            status_change(
                "evt-0",
                "2026-11-25T10:00:00Z",
                "RECONNECT_REQUIRED",
                "LOGIN_REQUIRED",
                connection_id=CONNECTION_ID,
                external_customer_id=CUSTOMER,
            )
        )
        == IngestOutcome.ACCEPTED
    )
    downstream()

    for round_ in (1, 2):
        # The customer asks for a repair token (the API records the attempt)...
        monkeypatch.setattr(api.service, "_clock", lambda r=round_: start + timedelta(minutes=10 * r))
        assert api.call("POST", f"/connections/{CONNECTION_ID}/repair")[0] == 200
        # ...completes the widget, and Meld says the connection stays RECONNECT_REQUIRED.
        stamp = (start + timedelta(minutes=10 * round_ + 5)).isoformat().replace("+00:00", "Z")
        assert deliver(completed(f"evt-c{round_}", stamp, CONNECTION_ID)) == IngestOutcome.ACCEPTED
        still_broken = status_change(
            f"evt-s{round_}",
            stamp,
            "RECONNECT_REQUIRED",
            "PROVIDER_ERROR",
            connection_id=CONNECTION_ID,
            external_customer_id=CUSTOMER,
        )
        assert deliver(still_broken) == IngestOutcome.ACCEPTED
        view = api.call("GET", f"/connections/{CONNECTION_ID}")[2]
        assert view["failedRepairs"] == round_

    assert view["action"] == Action.START_NEW_CONNECTION
    assert view["attentionSince"] is None
    [ended] = downstream()
    assert (ended["detail-type"], ended["detail"]["resolution"]) == ("Connection Attention Ended", "REPAIR_FAILED")
    listed = api.call("GET", "/connections")[2]["connections"]
    assert [c["action"] for c in listed] == ["START_NEW_CONNECTION"]


def test_the_committed_replacer_event_is_handled(webhook_env: LocalResources, monkeypatch: pytest.MonkeyPatch):
    from functions.connection_replacer import app as replacer_app
    from tests.support import load_event

    meld = MeldStandIn()
    store_for(webhook_env.table_name).save_connection(connection(), expected_version=None)
    monkeypatch.setattr(
        replacer_app, "connection_replacer", lambda: replacer(webhook_env.table_name, webhook_env.event_bus_name, meld)
    )
    answer = replacer_app.lambda_handler(load_event("connection_replacer_connection_replaced"), LambdaContext())
    assert answer == {"outcome": "retired"}
    assert len(meld.calls(*DELETE_OLD)) == 1
