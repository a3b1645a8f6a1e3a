"""The notifier's store on moto: what its conditional writes leave in the table, and which refusals it absorbs.

A refused condition means "someone else already moved this on" and is absorbed; any other DynamoDB error is not the
store's to hide and goes up (the invocation fails and is retried).
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from connection_repair.adapters.dynamodb.keys import SHARDS, from_item, shard_of
from connection_repair.adapters.dynamodb.notification_items import (
    claim_key,
    customer_key,
    due_key,
    due_partition,
    episode_key,
)
from connection_repair.adapters.dynamodb.notifications import DynamoDBNotificationStore
from connection_repair.domain.status_policy import Action
from connection_repair.notify.ports import ClaimConflict
from connection_repair.notify.records import EpisodeNotice, MessageClaim
from connection_repair.platform.clock import utc_stamp
from connection_repair.preferences.model import Channel
from local.aws_resources import LocalResources
from tests.notifier_support import T0

CUSTOMER = "customer-1"


@pytest.fixture
def store(aws: LocalResources) -> DynamoDBNotificationStore:
    return DynamoDBNotificationStore(boto3.client("dynamodb"), aws.table_name)


def notice(episode: str = "episode-1", number: int = 0) -> EpisodeNotice:
    return EpisodeNotice(
        episode_id=episode,
        connection_id="conn-1",
        external_customer_id=CUSTOMER,
        action=Action.REPAIR,
        attention_since=T0,
        next_message=number,
        due_at=T0 + timedelta(minutes=5),
    )


def item(store: DynamoDBNotificationStore, key: dict[str, Any]) -> dict[str, Any] | None:
    found: dict[str, Any] | None = store._client.get_item(TableName=store._table, Key=key, ConsistentRead=True).get(
        "Item"
    )
    return found


def throttled(store: DynamoDBNotificationStore, operation: str) -> None:
    store._client.meta.events.register(
        f"before-call.dynamodb.{operation}",
        lambda **_: (SimpleNamespace(status_code=400, headers={}), {"Error": {"Code": "ThrottlingException"}}),
    )


def claim(store: DynamoDBNotificationStore, token: str, *, previous: Any = None, at: Any = T0) -> None:
    store.claim(
        CUSTOMER,
        [MessageClaim("episode-1", 0)],
        token=token,
        now=at,
        previous_sent_at=previous,
        lease_until=at + timedelta(minutes=15),
    )


def test_deferring_moves_the_message_in_the_due_index(store: DynamoDBNotificationStore) -> None:
    store.register_episode(notice())
    later = T0 + timedelta(hours=9)
    store.defer(notice(), later)
    stored = item(store, episode_key(CUSTOMER, "episode-1"))
    assert stored is not None
    assert (stored["dueAt"], stored["gsi2pk"], stored["gsi2sk"]) == (
        {"S": utc_stamp(later)},
        {"S": due_partition(later, "episode-1")},
        {"S": due_key(later, "episode-1")},
    )
    assert [n.episode_id for n in store.due_episodes(later, limit=10)] == ["episode-1"]
    assert stored["heldByIncident"] == {"BOOL": False}  # deferred for the customer's sake, not held by an incident


def test_holding_a_message_for_an_incident_moves_it_and_marks_it_held(store: DynamoDBNotificationStore) -> None:
    store.register_episode(notice())
    until = T0 + timedelta(hours=2)
    store.hold(notice(), until, T0)
    [held] = store.due_episodes(until, limit=10)
    assert (held.episode_id, held.due_at, held.held_by_incident) == ("episode-1", until, True)
    stored = item(store, episode_key(CUSTOMER, "episode-1"))
    assert stored is not None
    assert from_item(stored)["deferred#0"] == {"reason": "INCIDENT", "at": utc_stamp(T0), "until": utc_stamp(until)}


def test_why_a_message_was_deferred_or_not_sent_is_noted_on_its_episode_per_message(
    store: DynamoDBNotificationStore,
) -> None:
    store.register_episode(notice())
    store.defer(notice(), T0 + timedelta(hours=1), reason="QUIET_HOURS", now=T0)
    store.defer(notice(), T0 + timedelta(hours=2), reason="SEND_RATE", now=T0 + timedelta(hours=1))
    store.defer(notice(), T0 + timedelta(hours=3))  # a re-key without a reason keeps the last one said
    moved_on = notice().model_copy(update={"next_message": 1, "due_at": T0 + timedelta(days=1)})
    store.advance(notice(), moved_on, [], T0 + timedelta(hours=3), "SENT", skipped="OPTED_OUT")

    stored = from_item(item(store, episode_key(CUSTOMER, "episode-1")) or {})
    # The latest deferral of message #0, and why it was never sent
    assert stored["deferred#0"] == {
        "reason": "SEND_RATE",
        "at": utc_stamp(T0 + timedelta(hours=1)),
        "until": utc_stamp(T0 + timedelta(hours=2)),
    }
    assert stored["skipped#0"] == {"reason": "OPTED_OUT", "at": utc_stamp(T0 + timedelta(hours=3))}
    assert stored["nextMessage"] == 1
    # A note never stops the episode being read
    [due] = store.due_episodes(T0 + timedelta(days=1), limit=10)
    assert due.next_message == 1


def test_deferring_a_message_that_moved_on_or_closed_changes_nothing(store: DynamoDBNotificationStore) -> None:
    store.register_episode(notice())
    before = item(store, episode_key(CUSTOMER, "episode-1"))
    store.defer(notice(number=1), T0 + timedelta(hours=9))  # the episode is at message 0, not 1
    assert item(store, episode_key(CUSTOMER, "episode-1")) == before
    store.close_episode(CUSTOMER, "episode-1", resolution="REPAIRED", now=T0, connection_id="conn-1")
    store.defer(notice(), T0 + timedelta(hours=9))
    assert "dueAt" not in item(store, episode_key(CUSTOMER, "episode-1"))  # type: ignore[operator]


def test_releasing_takes_back_a_claim_but_never_one_already_sent(store: DynamoDBNotificationStore) -> None:
    store.register_episode(notice())
    claim(store, "first")
    store.release_claims(CUSTOMER, [MessageClaim("episode-1", 0)])
    assert item(store, claim_key(CUSTOMER, "episode-1", 0)) is None

    store.release_slot(CUSTOMER, "first", None)
    claim(store, "second")
    store.advance(notice(), notice(number=1), [MessageClaim("episode-1", 0)], T0, "SENT")
    store.release_claims(CUSTOMER, [MessageClaim("episode-1", 0)])
    sent = store.get_claim(CUSTOMER, "episode-1", 0)
    assert sent is not None
    assert sent.state == "SENT"


def test_releasing_the_slot_restores_the_previous_send_time_only_for_its_own_token(
    store: DynamoDBNotificationStore,
) -> None:
    two_days_ago = T0 - timedelta(days=2)
    claim(store, "ours", previous=None, at=two_days_ago)
    store.release_slot(CUSTOMER, "someone-elses", None)  # not the holder: nothing happens
    assert store.get_customer_state(CUSTOMER).last_sent_at == two_days_ago

    # The customer was sent a message two days ago; a new send claims the slot, then gives it back
    store._client.update_item(
        TableName=store._table,
        Key=customer_key(CUSTOMER),
        UpdateExpression="REMOVE claimToken",
    )
    store._client.delete_item(TableName=store._table, Key=claim_key(CUSTOMER, "episode-1", 0))
    claim(store, "next", previous=two_days_ago, at=T0)
    assert store.get_customer_state(CUSTOMER).last_sent_at == T0
    store.release_slot(CUSTOMER, "next", two_days_ago)
    slot = item(store, customer_key(CUSTOMER))
    assert slot is not None
    assert slot["lastSentAt"] == {"S": utc_stamp(two_days_ago)}
    assert not {"claimToken", "previousSentAt"} & slot.keys()


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        ("UpdateItem", lambda store: store.defer(notice(), T0 + timedelta(hours=1))),
        ("DeleteItem", lambda store: store.release_claims(CUSTOMER, [MessageClaim("episode-1", 0)])),
        ("UpdateItem", lambda store: store.release_slot(CUSTOMER, "ours", None)),
        ("UpdateItem", lambda store: store.close_episode(CUSTOMER, "e", resolution="R", now=T0, connection_id="c")),
        ("PutItem", lambda store: store.register_episode(notice())),
    ],
    ids=["defer", "release_claims", "release_slot", "close_episode", "register_episode"],
)
def test_errors_other_than_a_refused_condition_go_up(
    store: DynamoDBNotificationStore, operation: str, call: Any
) -> None:
    store.register_episode(notice("episode-0"))
    claim(store, "ours")
    throttled(store, operation)
    with pytest.raises(ClientError, match="ThrottlingException"):
        call(store)


def due(store: DynamoDBNotificationStore, episode: str, at: Any) -> None:
    store.register_episode(notice(episode).model_copy(update={"due_at": at}))


def test_due_messages_are_read_from_yesterday_and_today_up_to_now_and_the_limit(
    store: DynamoDBNotificationStore,
) -> None:
    now = T0
    due(store, "yesterday", now - timedelta(days=1))
    for number in range(3):
        due(store, f"today-{number}", now - timedelta(minutes=3 - number))
    due(store, "later-today", now + timedelta(minutes=1))
    due(store, "tomorrow", now + timedelta(days=1))

    everything = store.due_episodes(now, limit=10)
    assert [n.episode_id for n in everything] == ["yesterday", "today-0", "today-1", "today-2"]
    assert store.last_read_count == 4  # across both partitions, nothing that is not due

    # The oldest day first, and never more than asked for, whichever partition fills the limit (within a day, a
    # sweep short of room takes a shard's messages before another's)
    first, second = store.due_episodes(now, limit=2)
    assert (first.episode_id, second.episode_id.startswith("today-")) == ("yesterday", True)
    assert store.last_read_count == 2
    assert [n.episode_id for n in store.due_episodes(now, limit=4)] == ["yesterday", "today-0", "today-1", "today-2"]


def test_due_messages_are_read_across_pages_smaller_than_asked_for(store: DynamoDBNotificationStore) -> None:
    # DynamoDB ends a page at 1 MB, before the Limit: a page of 2 here stands for that.
    def small_pages(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = min(params.get("Limit", 2), 2)

    store._client.meta.events.register("provide-client-params.dynamodb.Query", small_pages)
    # More messages than the day's shards hold in one page each: some shard is read over several pages
    count = 2 * SHARDS + 1
    for number in range(count):
        due(store, f"today-{number:02}", T0 - timedelta(minutes=count - number))
    assert [n.episode_id for n in store.due_episodes(T0, limit=100)] == [f"today-{n:02}" for n in range(count)]
    assert store.last_read_count == count


def test_a_sweep_short_of_room_reads_no_more_than_its_limit_over_a_days_shards(
    store: DynamoDBNotificationStore,
) -> None:
    # Today: one message in the first shard, five in the second; and one overdue from yesterday
    def in_shard(shard: int, count: int) -> list[str]:
        return [name for name in (f"episode-{n}" for n in range(200)) if shard_of(name) == shard][:count]

    first_shard = in_shard(0, 1)
    due(store, "yesterday", T0 - timedelta(days=1))
    for number, episode in enumerate(first_shard + in_shard(1, 5)):
        due(store, episode, T0 - timedelta(minutes=10 - number))
    # Room for four: yesterday's, the first shard's, and two of the second's; the second shard is asked for two
    read = store.due_episodes(T0, limit=4)
    assert [n.episode_id for n in read][:2] == ["yesterday", *first_shard]
    assert len(read) == 4
    assert store.last_read_count == 4


def test_a_claim_records_who_took_it_when_until_when_and_when_it_may_be_forgotten(
    store: DynamoDBNotificationStore,
) -> None:
    store.register_episode(notice())
    claim(store, "token-1")
    stored = item(store, claim_key(CUSTOMER, "episode-1", 0))
    assert stored is not None
    assert stored["state"] == {"S": "CLAIMED"}
    assert stored["token"] == {"S": "token-1"}
    assert stored["claimedAt"] == {"S": utc_stamp(T0)}
    assert stored["leaseUntil"] == {"S": utc_stamp(T0 + timedelta(minutes=15))}
    assert stored["expiresAt"] == {"N": str(int((T0 + timedelta(days=180)).timestamp()))}  # the table's TTL
    slot = item(store, customer_key(CUSTOMER))
    assert slot is not None
    assert (slot["lastSentAt"], slot["claimToken"]) == ({"S": utc_stamp(T0)}, {"S": "token-1"})


def test_a_sent_message_is_recorded_with_when_and_the_providers_ids(store: DynamoDBNotificationStore) -> None:
    store.register_episode(notice())
    claim(store, "token-1")
    sent = notice().model_copy(update={"next_message": 1, "messages_sent": 1})
    store.advance(notice(), sent, [MessageClaim("episode-1", 0)], T0, "SENT", message_ids={"EMAIL": "ses-1"})

    recorded = item(store, claim_key(CUSTOMER, "episode-1", 0))
    assert recorded is not None
    assert (recorded["state"], recorded["doneAt"]) == ({"S": "SENT"}, {"S": utc_stamp(T0)})
    assert recorded["messageIds"] == {"M": {"EMAIL": {"S": "ses-1"}}}


def test_a_sent_message_is_recorded_as_sent_even_if_its_episode_closed_during_the_send(
    store: DynamoDBNotificationStore,
) -> None:
    store.register_episode(notice())
    claim(store, "token-1")
    # Repaired while the message was on its way: the episode is closed before the send is marked
    store.close_episode(CUSTOMER, "episode-1", resolution="REPAIRED", now=T0, connection_id="conn-1")
    sent = notice().model_copy(update={"next_message": 1, "messages_sent": 1})
    store.advance(notice(), sent, [MessageClaim("episode-1", 0)], T0, "SENT")
    recorded = item(store, claim_key(CUSTOMER, "episode-1", 0))
    assert recorded is not None
    assert (recorded["state"], "leaseUntil" in recorded) == ({"S": "SENT"}, False)
    episode = item(store, episode_key(CUSTOMER, "episode-1"))
    assert episode is not None
    assert (episode["closed"], episode["nextMessage"]) == ({"BOOL": True}, {"N": "0"})  # the closed episode untouched


def test_marking_a_send_fails_loudly_on_anything_but_a_moved_on_episode(store: DynamoDBNotificationStore) -> None:
    store.register_episode(notice())
    claim(store, "token-1")
    throttled(store, "TransactWriteItems")
    sent = notice().model_copy(update={"next_message": 1, "messages_sent": 1})
    with pytest.raises(ClientError):
        store.advance(notice(), sent, [MessageClaim("episode-1", 0)], T0, "SENT")
    recorded = item(store, claim_key(CUSTOMER, "episode-1", 0))
    assert recorded is not None
    assert recorded["state"] == {"S": "CLAIMED"}


def test_an_episode_is_registered_once_and_forgotten_its_retention_after_it_began(
    store: DynamoDBNotificationStore,
) -> None:
    assert store.register_episode(notice()) is True
    assert store.register_episode(notice()) is False
    kept = item(store, episode_key(CUSTOMER, "episode-1"))
    assert kept is not None
    assert kept["expiresAt"] == {"N": str(int((notice().attention_since + timedelta(days=180)).timestamp()))}


def test_a_customers_open_episodes_are_read_across_pages(store: DynamoDBNotificationStore) -> None:
    for number in range(5):
        store.register_episode(notice(f"episode-{number}"))

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = 2  # DynamoDB ends a page at 1 MB; a small limit on the wire stands for that

    store._client.meta.events.register("provide-client-params.dynamodb.Query", small_pages)
    assert sorted(n.episode_id for n in store.customer_episodes(CUSTOMER)) == [f"episode-{n}" for n in range(5)]


def test_messages_due_together_are_spread_over_the_days_shards_and_all_read(store: DynamoDBNotificationStore) -> None:
    episodes = [f"episode-{n}" for n in range(40)]
    for episode in episodes:
        store.register_episode(notice().model_copy(update={"episode_id": episode}))
    partitions = {item(store, episode_key(CUSTOMER, e))["gsi2pk"]["S"] for e in episodes}  # type: ignore[index]

    due = store.due_episodes(T0 + timedelta(hours=1), limit=100)

    assert len(partitions) == SHARDS
    assert all(partition.startswith(f"NOTIFY_DUE#{T0:%Y-%m-%d}#") for partition in partitions)
    assert sorted(n.episode_id for n in due) == sorted(episodes)
    assert store.last_read_count == len(episodes)  # nothing read that is not due


def test_a_message_listed_by_a_version_before_the_shards_is_still_found(store: DynamoDBNotificationStore) -> None:
    store.register_episode(notice())
    key = episode_key(CUSTOMER, "episode-1")
    store._client.update_item(
        TableName=store._table,
        Key=key,
        UpdateExpression="SET gsi2pk = :day",
        ExpressionAttributeValues={":day": {"S": f"NOTIFY_DUE#{T0:%Y-%m-%d}"}},
    )

    assert [n.episode_id for n in store.due_episodes(T0 + timedelta(hours=1), limit=10)] == ["episode-1"]


def test_a_first_sweep_reads_far_back_only_where_earlier_versions_listed_messages(
    store: DynamoDBNotificationStore,
) -> None:
    store.register_episode(notice())  # the first message listed in a shard: today's
    queried: list[str] = []
    store._client.meta.events.register(
        "provide-client-params.dynamodb.Query",
        lambda params, **_: queried.append(params["ExpressionAttributeValues"][":due"]["S"]),
    )

    assert [n.episode_id for n in store.due_episodes(T0 + timedelta(hours=1), limit=10)] == ["episode-1"]

    # 180 days back in the unsharded partitions, then today's nine: not nine a day for half a year
    assert len(queried) == 180 + 1 + SHARDS
    assert all(partition.count("#") == 1 for partition in queried[:180])


def test_a_claim_meeting_another_sends_slot_says_so_and_writes_nothing(store: DynamoDBNotificationStore) -> None:
    store.register_episode(notice())
    store.register_episode(notice("episode-2"))
    claim(store, "token-1")

    with pytest.raises(ClaimConflict) as conflict:
        store.claim(
            CUSTOMER,
            [MessageClaim("episode-2", 0)],
            token="token-2",
            now=T0,
            previous_sent_at=None,
            lease_until=T0 + timedelta(minutes=15),
        )

    # The slot, not a message: the caller gives up at once instead of trying the messages again
    assert (conflict.value.customer_slot_taken, list(conflict.value.taken)) == (True, [])
    assert item(store, claim_key(CUSTOMER, "episode-2", 0)) is None
    assert item(store, customer_key(CUSTOMER))["claimToken"] == {"S": "token-1"}  # type: ignore[index]


def test_an_unusable_address_is_recorded_with_why_and_when(store: DynamoDBNotificationStore) -> None:
    store.mark_unusable(CUSTOMER, Channel.EMAIL, "ada@example.com", reason="BOUNCED", now=T0)

    stored = item(store, customer_key(CUSTOMER))
    assert stored is not None
    assert stored["unusableEMAIL"] == {
        "M": {"address": {"S": "ada@example.com"}, "reason": {"S": "BOUNCED"}, "at": {"S": utc_stamp(T0)}}
    }
    assert store.get_customer_state(CUSTOMER).unusable == {Channel.EMAIL: "ada@example.com"}


def test_an_episodes_item_holds_what_is_known_and_nothing_empty(store: DynamoDBNotificationStore) -> None:
    store.register_episode(notice())  # no institution, status or resolution known

    stored = item(store, episode_key(CUSTOMER, "episode-1"))
    assert stored is not None
    assert [name for name, value in stored.items() if "NULL" in value] == []
    assert not {"institutionId", "institutionName", "status", "statusReason", "closed", "resolution"} & set(stored)
    assert stored["episodeId"] == {"S": "episode-1"}
    assert stored["dueAt"] == {"S": utc_stamp(T0 + timedelta(minutes=5))}


def test_a_reason_without_when_it_was_decided_is_refused_and_nothing_moves(store: DynamoDBNotificationStore) -> None:
    store.register_episode(notice())
    before = item(store, episode_key(CUSTOMER, "episode-1"))

    with pytest.raises(ValueError, match="noted with when"):
        store.defer(notice(), T0 + timedelta(hours=1), reason="QUIET_HOURS")

    assert item(store, episode_key(CUSTOMER, "episode-1")) == before
