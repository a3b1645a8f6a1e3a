"""Retried POSTs (a double click, a client's retry) answered once: the same Idempotency-Key from the same caller
within 24 h gets the first answer and Meld is called once; another body under the same key is refused."""

from __future__ import annotations

from typing import Any

import boto3
import httpx
import pytest

from local.aws_resources import LocalResources
from tests.repair_api_support import (
    CONNECTION_ID,
    OTHER_CUSTOMER,
    RepairApi,
    connection,
    install_repair_api,
    meld_error,
)

REPAIR = ("POST", "/bank-linking/connect/repair")
START = ("POST", "/bank-linking/connect/start")


@pytest.fixture
def api(aws: LocalResources, monkeypatch: pytest.MonkeyPatch) -> RepairApi:
    api = install_repair_api(aws.table_name, monkeypatch)
    api.store.save_connection(connection(), expected_version=None)
    api.store.save_connection(connection("theirs", customer=OTHER_CUSTOMER), expected_version=None)
    return api


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def test_a_repeated_repair_gets_the_first_answer_and_meld_is_called_once(api: RepairApi) -> None:
    first = api.call("POST", f"/connections/{CONNECTION_ID}/repair", headers=keyed("click-1"))
    again = api.call("POST", f"/connections/{CONNECTION_ID}/repair", headers=keyed("click-1"))
    assert first[0] == again[0] == 200
    assert again[2] == first[2]
    assert again[1]["Cache-Control"] == "no-store"
    assert len(api.meld.calls(*REPAIR)) == 1
    stored = api.store.get_connection(CONNECTION_ID)
    assert stored is not None
    assert stored.repair_attempts == 1


def test_a_repeated_start_creates_one_connection(api: RepairApi) -> None:
    body = {"replacesConnectionId": CONNECTION_ID}
    first = api.call("POST", "/connections", body, headers=keyed("start-1"))
    again = api.call("POST", "/connections", body, headers=keyed("start-1"))
    assert first[0] == again[0] == 201
    assert again[2] == first[2]
    assert len(api.meld.calls(*START)) == 1
    # Started and not yet completed, the new connection is listed only when asked for.
    listed = api.call("GET", "/connections", query={"include": "abandoned"})[2]["connections"]
    assert [c["connectionId"] for c in listed].count(first[2]["connectionId"]) == 1


def test_without_a_key_every_request_is_a_new_one(api: RepairApi) -> None:
    for _ in range(2):
        assert api.call("POST", "/connections", {})[0] == 201
    assert len(api.meld.calls(*START)) == 2


def test_the_same_key_with_another_body_is_refused_and_changes_nothing(api: RepairApi) -> None:
    assert api.call("POST", "/connections", {}, headers=keyed("start-2"))[0] == 201
    status, _, answer = api.call(
        "POST", "/connections", {"replacesConnectionId": CONNECTION_ID}, headers=keyed("start-2")
    )
    assert (status, answer["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert answer["errors"][0]["field"] == "Idempotency-Key"
    assert len(api.meld.calls(*START)) == 1


def test_a_key_is_the_callers_own_and_one_routes_own(api: RepairApi) -> None:
    # Another caller with the same key: a request of their own
    assert api.call("POST", "/connections", {}, headers=keyed("shared"))[0] == 201
    assert api.call("POST", "/connections", {}, headers=keyed("shared"), sub=OTHER_CUSTOMER)[0] == 201
    assert len(api.meld.calls(*START)) == 2
    # The same caller's key on another route or another connection: another request too
    assert api.call("POST", f"/connections/{CONNECTION_ID}/repair", headers=keyed("shared"))[0] == 200
    assert api.call("POST", "/connections/theirs/repair", headers=keyed("shared"), sub=OTHER_CUSTOMER)[0] == 200
    assert len(api.meld.calls(*REPAIR)) == 2


def test_a_failed_request_is_not_recorded_and_its_retry_runs_again(api: RepairApi) -> None:
    api.meld.respond(*REPAIR, meld_error(500))
    assert api.call("POST", f"/connections/{CONNECTION_ID}/repair", headers=keyed("retry-1"))[0] == 503
    api.meld.routes.pop(REPAIR)
    api.meld.__post_init__()
    status, _, answer = api.call("POST", f"/connections/{CONNECTION_ID}/repair", headers=keyed("retry-1"))
    assert status == 200
    assert answer["connectToken"]


@pytest.mark.parametrize("key", ["", "x" * 256, "two words", "naïve"], ids=["empty", "too-long", "space", "non-ascii"])
def test_a_malformed_key_is_refused(api: RepairApi, key: str) -> None:
    status, _, answer = api.call("POST", f"/connections/{CONNECTION_ID}/repair", headers=keyed(key))
    assert (status, answer["code"]) == (422, "INVALID_REQUEST")
    assert api.meld.calls(*REPAIR) == []


def test_a_retry_while_the_first_is_still_being_answered_is_told_to_wait(api: RepairApi) -> None:
    answers: list[tuple[int, dict[str, str], Any]] = []

    def meanwhile(request: httpx.Request) -> httpx.Response:
        # The client retries while Meld is still answering the first request
        answers.append(api.call("POST", f"/connections/{CONNECTION_ID}/repair", headers=keyed("slow-1")))
        api.meld.routes.pop(REPAIR)
        api.meld.__post_init__()
        return api.meld(request)

    api.meld.respond(*REPAIR, meanwhile)
    first = api.call("POST", f"/connections/{CONNECTION_ID}/repair", headers=keyed("slow-1"))
    [(status, headers, answer)] = answers
    assert (status, answer["code"], answer["action"], headers["Retry-After"]) == (
        409,
        "REQUEST_IN_PROGRESS",
        "WAIT",
        "1",
    )
    assert first[0] == 200


def test_answered_requests_expire_with_the_tables_ttl(api: RepairApi) -> None:
    api.call("POST", f"/connections/{CONNECTION_ID}/repair", headers=keyed("ttl-1"))
    items = boto3.client("dynamodb").scan(TableName=api.table_name)["Items"]
    [record] = [item for item in items if item["pk"]["S"].startswith("IDEMPOTENCY#")]
    assert "expiresAt" in record
    assert "ttl-1" not in str(record)  # the key is kept hashed
