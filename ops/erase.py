"""`make erase CUSTOMER=<externalCustomerId> APPLY=1 [STACK=<name>]`: the operator's erasure of any customer, as
``DELETE /me`` erases the signed-in one (docs/operations.md, Erasure). Without ``APPLY=1`` it only says what it
would do: erasing cannot be undone.
"""

from __future__ import annotations

import sys

from connection_repair.adapters.dynamodb.erasure import DynamoDBCustomerRecords
from connection_repair.erasure.service import erase_customer
from ops.stack import Stack, options, run_tool, stack_of

USAGE = "usage: make erase CUSTOMER=<externalCustomerId> APPLY=1 [STACK=<deployed stack name>]"


def erase(stack: Stack, customer: str) -> str:
    erasure = erase_customer(DynamoDBCustomerRecords(stack.client("dynamodb"), stack.table_name()), customer)
    return (
        f"erased: {erasure.items_deleted} item(s) of the customer's own, {erasure.connections_detached} "
        f"connection(s) and {erasure.events_redacted} stored event(s) no longer naming them"
    )


def main(argv: list[str]) -> int:
    given = options(argv)
    customer = given.get("CUSTOMER", "")
    if not customer:
        print(USAGE, file=sys.stderr)
        return 2
    if given.get("APPLY", "0") == "0":
        print(f"would erase customer {customer!r} from {given.get('STACK') or 'the local stack'}; APPLY=1 erases")
        return 0
    print(erase(stack_of(given.get("STACK")), customer))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main, sys.argv[1:]))
