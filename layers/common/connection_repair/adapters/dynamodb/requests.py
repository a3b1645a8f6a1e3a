"""Answered requests in the single table, with Powertools idempotency: ``RequestRecords``.

One item per (caller, route, ``Idempotency-Key``): ``pk=IDEMPOTENCY#repair-api``, ``sk=<hash of the key>``, the
stored answer, a hash of the request for validation, and ``expiresAt`` (the table's TTL) 24 h on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from connection_repair.repair.ports import KeyReused, RequestInProgress

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

RETENTION_SECONDS = 24 * 3600
PARTITION = "IDEMPOTENCY#repair-api"


class DynamoDBRequestRecords:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._store = DynamoDBPersistenceLayer(
            table_name,
            key_attr="pk",
            sort_key_attr="sk",
            static_pk_value=PARTITION,
            expiry_attr="expiresAt",
            boto3_client=client,
        )
        self._config = IdempotencyConfig(
            event_key_jmespath="key", payload_validation_jmespath="request", expires_after_seconds=RETENTION_SECONDS
        )

    def once(self, key: str, request: Mapping[str, Any], answer: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        def answered(record: dict[str, Any]) -> dict[str, Any]:
            return answer()

        once = idempotent_function(data_keyword_argument="record", persistence_store=self._store, config=self._config)(
            answered
        )
        try:
            return cast("dict[str, Any]", once(record={"key": key, "request": dict(request)}))
        except IdempotencyValidationError:
            raise KeyReused(key) from None
        except IdempotencyAlreadyInProgressError:
            raise RequestInProgress(key) from None
