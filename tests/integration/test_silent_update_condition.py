"""The one-write path's DynamoDB condition and its Python predicate (``SilentUpdate.holds``) are the same rule.

Ingestion decides in DynamoDB (a conditional UpdateItem inside the event's transaction) whether an event may skip
the full transition; the unit tests check the Python predicate. Here both meet: every generated connection is
stored in moto, the real store applies the silent update, and the outcome must be exactly what the predicate says.
Where it applies, the stored connection is the full transition's result; where it does not, nothing is written
and the store hands back the connection as it is.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import boto3
from hypothesis import given, settings
from moto import mock_aws

from connection_repair.adapters.dynamodb.connection_store import DynamoDBConnectionStore
from connection_repair.adapters.dynamodb.connections import connection_item
from connection_repair.adapters.dynamodb.keys import connection_key, event_key
from connection_repair.domain.connection import Connection, ConnectionChange
from connection_repair.domain.transitions import apply_change, silent_update
from connection_repair.ingestion.ports import ExpectationUnmet
from connection_repair.outbox.ports import StoredEvent
from local.aws_resources import create_resources
from local.moto_atomic import atomic_dynamodb_in_process
from tests.connection_states import states_and_changes

RECEIVED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_the_dynamodb_condition_applies_exactly_where_the_python_predicate_holds() -> None:
    with mock_aws(), atomic_dynamodb_in_process():
        table = create_resources().table_name
        client = boto3.client("dynamodb")
        store = DynamoDBConnectionStore(client, table, event_ttl=timedelta(days=90))
        numbers = itertools.count()
        outcomes: list[bool] = []

        @settings(max_examples=300, deadline=None)
        @given(case=states_and_changes())
        def check(case: tuple[Connection | None, ConnectionChange, datetime, str]) -> None:
            current, change, event_time, name = case
            # Each example gets its own connection and event; ids keep their order (same suffix, names compare).
            number = next(numbers)
            connection_id, event_id = f"conn-{number}", f"{name}-{number:08d}"
            change = change.model_copy(update={"connection_id": connection_id})
            if current is not None:
                current = current.model_copy(
                    update={
                        "connection_id": connection_id,
                        "last_event_id": f"{current.last_event_id}-{number:08d}" if current.last_event_id else None,
                    }
                )
                client.put_item(TableName=table, Item=connection_item(current))
            silent = silent_update(change, event_id=event_id, event_time=event_time)
            event = StoredEvent(
                event_id=event_id,
                event_type="BANK_LINKING_CONNECTION_STATUS_CHANGE",
                event_time=event_time,
                connection_id=connection_id,
                received_at=RECEIVED,
                retry_count=0,
                raw_body="{}",
            )

            try:
                store.save_silent_update(event, silent)
            except ExpectationUnmet as unmet:
                applied, handed_back = False, unmet.current
            else:
                applied, handed_back = True, None
            finally:
                # moto copies every table for each transaction: keep the table small.
                stored, stored_event = store.get_connection(connection_id), store.get_event(event_id)
                client.delete_item(TableName=table, Key=connection_key(connection_id))
                client.delete_item(TableName=table, Key=event_key(event_id))
            outcomes.append(applied)

            assert applied == silent.holds(current)
            if applied:
                assert current is not None
                transition = apply_change(
                    current, change, event_id=event_id, event_time=event_time, new_episode_id="episode-new"
                )
                assert stored == transition.connection
                assert stored_event is not None
            else:
                # Nothing written: neither the connection nor the event (the transaction is all or nothing).
                assert stored == current
                assert handed_back == current
                assert stored_event is None

        check()
        assert sum(outcomes) >= len(outcomes) // 5, f"only {sum(outcomes)} of {len(outcomes)} examples applied"
        assert sum(outcomes) < len(outcomes), "no example was refused"
