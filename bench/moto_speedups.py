"""moto costs that real DynamoDB does not have, replaced so that benchmarks measure our code rather than moto.

moto 5.2.5 deep-copies *every table* a TransactWriteItems names before applying it (its rollback on failure), so each
transaction costs O(table size) and a run that grows the table costs O(n^2). ``journal_transactions`` keeps moto's
semantics (all or nothing) with a copy of only the items the transaction names: before the transaction each named
item is copied, and if moto cancels it those items are put back (or removed when they did not exist). A cancelled
transaction therefore still leaves the table exactly as it was, which the webhook path relies on (a refused quiet
write is followed by the full transition, docs/decisions.md §4).
"""

from __future__ import annotations

import copy
from typing import Any

_JOURNALED = "_connection_repair_bench_journaled"


def journal_transactions() -> None:
    """Replace moto's whole-table snapshot per TransactWriteItems with a per-item journal (idempotent)."""
    import moto.dynamodb.models as dynamodb_models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    backend = dynamodb_models.DynamoDBBackend
    if getattr(backend, _JOURNALED, False):
        return

    class _CopyAllButTables:
        """The module's ``copy``: every deepcopy as before, except of a whole table (the journal replaces it)."""

        @staticmethod
        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    dynamodb_models.copy = _CopyAllButTables  # type: ignore[assignment,attr-defined]
    original = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        journal: list[tuple[Table, DynamoType, DynamoType | None, Any]] = []
        for entry in transact_items:
            for operation in entry.values():
                table = self.tables.get(operation.get("TableName"))
                attributes = operation.get("Item") or operation.get("Key") or {}
                if table is None or table.hash_key_attr not in attributes:
                    continue  # moto rejects it before writing anything
                hash_value = DynamoType(attributes[table.hash_key_attr])
                range_value = None
                if table.range_key_attr is not None:
                    if table.range_key_attr not in attributes:
                        continue
                    range_value = DynamoType(attributes[table.range_key_attr])
                journal.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(journal):
                if range_value is None:
                    if item is None:
                        table.items.pop(hash_value, None)
                    else:
                        table.items[hash_value] = item
                elif item is None:
                    table.items[hash_value].pop(range_value, None)
                else:
                    table.items[hash_value][range_value] = item
            raise

    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    setattr(backend, _JOURNALED, True)


_PARTITIONED = "_connection_repair_bench_partitioned"


def partition_queries() -> None:
    """A Query reads only the items under its hash key: moto 5.2.5 walks (and sorts) every item of the table for it.

    Only ``Table.all_items`` is narrowed, for that one call, to the items under the queried hash key (of the table,
    or of the index for an index query, compared by type and value); moto's own filtering, sorting, paging and
    expressions run unchanged (idempotent).
    """
    from moto.dynamodb.models.table import Table

    if getattr(Table, _PARTITIONED, False):
        return
    original = Table.query

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if hash_key is None:
            return original(self, hash_key, *args, **kwargs)
        if index_name:
            items = _index_partition(self, index_name, hash_key)
        else:
            partition = self.items.get(hash_key)
            if partition is None:
                items = []
            elif self.range_key_attr is not None:
                items = list(partition.values())
            else:
                items = [partition]
        self.all_items = lambda: items
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query  # type: ignore[method-assign]
    setattr(Table, _PARTITIONED, True)


def _index_partition(table: Any, index_name: str, hash_key: Any) -> list[Any]:
    """The table's items whose value of the index's hash attribute is ``hash_key`` (every item if the index is unknown,
    so that moto's own validation answers)."""
    index = next((index for index in table.all_indexes() if index.name == index_name), None)
    if index is None:
        return list(table.all_items())
    attribute = next(key["AttributeName"] for key in index.schema if key["KeyType"] == "HASH")
    wanted = (hash_key.type, hash_key.value)
    partitions = table.items.values() if table.range_key_attr is not None else [table.items]
    found = []
    for partition in partitions:
        for item in partition.values():
            value = item.attrs.get(attribute)
            if value is not None and (value.type, value.value) == wanted:
                found.append(item)
    return found
