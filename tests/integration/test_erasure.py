"""DELETE /me through the Repair API's handler on moto: the caller's contact details, preferences and notification
history are gone, their connections and stored events no longer name them, and nobody else's data is touched."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest

from connection_repair.adapters.dynamodb.keys import connection_key, customer_partition, event_key
from connection_repair.adapters.dynamodb.notifications import DynamoDBNotificationStore
from connection_repair.domain.status_policy import Action
from connection_repair.notify.records import EpisodeNotice
from connection_repair.outbox.ports import StoredEvent
from connection_repair.preferences.model import Channel
from local.aws_resources import LocalResources
from local.template import Resolver, load_template
from ops.erase import erase
from ops.erase import main as erase_main
from tests.ops_support import MotoStack
from tests.repair_api_support import (
    CONNECTION_ID,
    CUSTOMER,
    NOW,
    OTHER_CUSTOMER,
    RepairApi,
    connection,
    connection_store_for,
    install_repair_api,
)
from tests.support import status_change

PREFERENCES = {"email": "ada@example.com", "phone": "+14155550123", "channels": ["EMAIL", "SMS"]}


@pytest.fixture
def api(aws: LocalResources, monkeypatch: pytest.MonkeyPatch) -> RepairApi:
    api = install_repair_api(aws.table_name, monkeypatch)
    for customer, connection_id in ((CUSTOMER, CONNECTION_ID), (OTHER_CUSTOMER, "conn-other")):
        api.store.save_connection(connection(connection_id, customer=customer), expected_version=None)
        body = status_change(
            f"evt-{connection_id}",
            "2026-11-25T11:00:00Z",
            "RECONNECT_REQUIRED",
            "LOGIN_REQUIRED",
            connection_id=connection_id,
            external_customer_id=customer,
        )
        connection_store_for(aws.table_name).save_event(
            StoredEvent(
                event_id=f"evt-{connection_id}",
                event_type="BANK_LINKING_CONNECTION_STATUS_CHANGE",
                event_time=NOW,
                connection_id=connection_id,
                received_at=NOW,
                retry_count=0,
                raw_body=json.dumps(body),
            ),
            lease_until=NOW,
        )
        assert api.call("PUT", "/me/notifications", PREFERENCES, sub=customer)[0] == 200
        notifications = DynamoDBNotificationStore(boto3.client("dynamodb"), aws.table_name)
        notifications.register_episode(
            EpisodeNotice(
                episode_id=f"episode-{connection_id}",
                connection_id=connection_id,
                external_customer_id=customer,
                action=Action.REPAIR,
                attention_since=NOW,
                due_at=NOW + timedelta(minutes=5),
            )
        )
        notifications.mark_unusable(customer, Channel.SMS, "+14155550123", reason="OPTED_OUT", now=NOW)
    return api


def partition(api: RepairApi, customer: str) -> list[str]:
    items = boto3.client("dynamodb").query(
        TableName=api.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": customer_partition(customer)},
    )["Items"]
    return sorted(item["sk"]["S"] for item in items)


def item(api: RepairApi, key: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = boto3.client("dynamodb").get_item(TableName=api.table_name, Key=key)["Item"]
    return found


def test_erasing_removes_the_callers_data_and_detaches_their_connections_and_events(api: RepairApi) -> None:
    before = item(api, connection_key(CONNECTION_ID))

    status, headers, body = api.call("DELETE", "/me")

    assert (status, body, headers.get("Cache-Control")) == (204, None, "no-store")
    # Contact details, preferences, notification history and contact marks: gone
    assert partition(api, CUSTOMER) == []
    # The connection and its event stay (Meld's state, the event's id for deduplication) without naming them
    detached = item(api, connection_key(CONNECTION_ID))
    assert not {"externalCustomerId", "customerId", "gsi1pk", "gsi1sk"} & set(detached)
    assert (detached["status"], int(detached["version"]["N"])) == (before["status"], int(before["version"]["N"]) + 1)
    stored = json.loads(item(api, event_key(f"evt-{CONNECTION_ID}"))["rawBody"]["S"])
    assert CUSTOMER not in json.dumps(stored)
    assert stored["payload"]["connectionId"] == CONNECTION_ID
    # What the caller sees afterwards: nothing of theirs
    assert api.call("GET", "/connections")[2] == {"connections": []}
    assert api.call("GET", "/me/notifications")[2]["email"] is None


def test_nobody_elses_data_is_touched_and_erasing_again_changes_nothing(api: RepairApi) -> None:
    others = partition(api, OTHER_CUSTOMER)
    other_connection = item(api, connection_key("conn-other"))
    other_event = item(api, event_key("evt-conn-other"))

    assert api.call("DELETE", "/me")[0] == 204
    after_once = item(api, connection_key(CONNECTION_ID))
    assert api.call("DELETE", "/me")[0] == 204

    assert item(api, connection_key(CONNECTION_ID)) == after_once
    assert partition(api, OTHER_CUSTOMER) == others
    assert item(api, connection_key("conn-other")) == other_connection
    assert item(api, event_key("evt-conn-other")) == other_event
    assert [c["connectionId"] for c in api.call("GET", "/connections", sub=OTHER_CUSTOMER)[2]["connections"]] == [
        "conn-other"
    ]


def test_erasing_needs_a_signed_in_customer(api: RepairApi) -> None:
    status, _, body = api.call("DELETE", "/me", sub=None)

    assert (status, body["code"]) == (401, "UNAUTHENTICATED")
    assert partition(api, CUSTOMER) != []


def test_an_operator_erases_any_customer_the_same_way_and_only_when_told_to(
    api: RepairApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert erase_main([f"CUSTOMER={OTHER_CUSTOMER}"]) == 0  # no APPLY: says what it would do, does nothing
    assert "APPLY=1 erases" in capsys.readouterr().out
    assert partition(api, OTHER_CUSTOMER) != []

    said = erase(MotoStack(Resolver(load_template())), OTHER_CUSTOMER)  # preferences, an episode, the send slot

    assert said.startswith("erased: 3 item(s) of the customer's own, 1 connection(s) and 1 stored event(s)")
    assert partition(api, OTHER_CUSTOMER) == []
    assert "externalCustomerId" not in item(api, connection_key("conn-other"))
    assert partition(api, CUSTOMER) != []  # the other customer's, untouched
    assert erase_main([]) == 2
