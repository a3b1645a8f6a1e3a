"""The notifier's due list on moto: the order a sweep reads in, and the shard watermark that several notifier
processes keep together (a later day recorded by one must never hide an earlier day's shards from the others)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from connection_repair.adapters.dynamodb.keys import shard_of
from connection_repair.adapters.dynamodb.notification_items import SWEEP_WATERMARK_KEY
from connection_repair.adapters.dynamodb.notifications import DynamoDBNotificationStore
from connection_repair.domain.status_policy import Action
from connection_repair.notify.records import EpisodeNotice
from local.aws_resources import LocalResources
from tests.notifier_support import T0


def notifier_process(aws: LocalResources) -> DynamoDBNotificationStore:
    """One notifier process's store: its own client and its own memory of the watermark."""
    return DynamoDBNotificationStore(boto3.client("dynamodb"), aws.table_name)


def due(store: DynamoDBNotificationStore, episode: str, at: datetime) -> None:
    store.register_episode(
        EpisodeNotice(
            episode_id=episode,
            connection_id=f"conn-{episode}",
            external_customer_id="customer-1",
            action=Action.REPAIR,
            attention_since=at - timedelta(minutes=5),
            due_at=at,
        )
    )


def not_in_the_first_shard(count: int) -> list[str]:
    return [name for name in (f"episode-{n}" for n in range(200)) if shard_of(name) != 0][:count]


def watermark(store: DynamoDBNotificationStore) -> dict[str, Any]:
    found: dict[str, Any] = store._client.get_item(TableName=store._table, Key=SWEEP_WATERMARK_KEY).get("Item", {})
    return found


def test_a_sweep_of_a_table_where_nothing_was_ever_listed_reads_nothing(aws: LocalResources) -> None:
    store = notifier_process(aws)

    assert store.due_episodes(T0, limit=10) == []
    assert watermark(store)["day"] == {"S": f"{T0:%Y-%m-%d}"}  # the next sweep starts today, not half a year back


def test_a_days_messages_are_read_in_due_order_whichever_shard_holds_them(aws: LocalResources) -> None:
    store = notifier_process(aws)
    # Episode names in one order, due times in the other, spread over the day's shards
    episodes = sorted(not_in_the_first_shard(6))
    for number, episode in enumerate(episodes):
        due(store, episode, T0 - timedelta(minutes=number + 1))

    read = store.due_episodes(T0, limit=10)

    assert len({shard_of(episode) for episode in episodes}) > 1
    assert [notice.episode_id for notice in read] == list(reversed(episodes))


def test_a_later_day_listed_by_one_process_never_hides_an_earlier_days_shards_from_the_others(
    aws: LocalResources,
) -> None:
    first, second = notifier_process(aws), notifier_process(aws)
    [today] = not_in_the_first_shard(1)
    due(first, today, T0)
    # Another process, knowing nothing of the first's listing, lists a message due tomorrow
    due(second, "tomorrow", T0 + timedelta(days=1))

    assert watermark(first)["shardedFrom"] == {"S": f"{T0:%Y-%m-%d}"}
    found = notifier_process(aws).due_episodes(T0 + timedelta(days=1, hours=1), limit=10)
    assert sorted(notice.episode_id for notice in found) == sorted([today, "tomorrow"])


def test_a_process_records_the_shard_watermark_once_a_day_and_again_only_for_an_earlier_day(
    aws: LocalResources,
) -> None:
    store = notifier_process(aws)
    written: list[str] = []
    store._client.meta.events.register(
        "provide-client-params.dynamodb.UpdateItem",
        lambda params, **_: (
            written.append(params["ExpressionAttributeValues"][":day"]["S"])
            if params["Key"] == SWEEP_WATERMARK_KEY
            else None
        ),
    )

    for number in range(3):
        due(store, f"today-{number}", T0 + timedelta(minutes=number))
    due(store, "tomorrow", T0 + timedelta(days=1))
    due(store, "yesterday", T0 - timedelta(days=1))

    assert written == [f"{T0:%Y-%m-%d}", f"{T0 - timedelta(days=1):%Y-%m-%d}"]


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_a_sweep_reads_no_further_than_its_limit_even_within_one_shard(aws: LocalResources, limit: int) -> None:
    store = notifier_process(aws)
    episodes = [name for name in (f"episode-{n}" for n in range(200)) if shard_of(name) == 1][:4]
    for number, episode in enumerate(episodes):
        due(store, episode, T0 - timedelta(minutes=10 - number))
    pages: list[int] = []
    store._client.meta.events.register(
        "provide-client-params.dynamodb.Query", lambda params, **_: pages.append(params["Limit"])
    )

    read = store.due_episodes(T0, limit=limit)

    assert [notice.episode_id for notice in read] == episodes[:limit]
    assert store.last_read_count == limit
    # Half a year back in the unsharded partitions, then today's unsharded one and the first two shards: each asked
    # for the room left, and no shard asked for once the second filled it
    assert pages == [limit] * (180 + 3)
