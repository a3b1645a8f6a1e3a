"""The tag an email carries to say whose address it went to, so that SES's bounces and complaints find the customer."""

from __future__ import annotations

CUSTOMER_TAG = "customer"
# SES tag values: at most 256 of ASCII letters, digits, '_' and '-'.
MAX_TAG_VALUE = 256


def customer_tag(customer: str) -> str | None:
    """``customer`` as an SES tag value (hex of its UTF-8: ids may hold any character); None when too long."""
    value = customer.encode().hex()
    return value if len(value) <= MAX_TAG_VALUE else None


def customer_of_tag(value: str) -> str | None:
    try:
        return bytes.fromhex(value).decode()
    except ValueError:
        return None
