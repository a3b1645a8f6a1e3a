"""The unsubscribe link's token: the customer it was signed for, and nobody for anything else."""

from __future__ import annotations

import pytest

from connection_repair.preferences.unsubscribe import customer_of_token, unsubscribe_token

SECRET = "s3cret-unsubscribe-key"


@pytest.mark.parametrize("customer", ["customer-1", "cust/ü 1.2", "a" * 300])
def test_a_token_names_the_customer_it_was_signed_for(customer: str) -> None:
    assert customer_of_token([SECRET], unsubscribe_token(SECRET, customer)) == customer


def test_during_a_rotation_either_secret_verifies() -> None:
    assert customer_of_token(["new", SECRET], unsubscribe_token(SECRET, "c1")) == "c1"
    assert customer_of_token(["new"], unsubscribe_token(SECRET, "c1")) is None


def test_a_token_for_one_customer_cannot_be_turned_into_another_s() -> None:
    token = unsubscribe_token(SECRET, "customer-1")
    other = unsubscribe_token(SECRET, "customer-2")
    swapped = other.split(".")[0] + "." + token.split(".")[1]
    assert customer_of_token([SECRET], swapped) is None


@pytest.mark.parametrize(
    "token",
    ["", ".", "abc", "Y3VzdG9tZXItMQ.", "Y3VzdG9tZXItMQ.AAAA", "!!!.###", "Y3VzdG9tZXItMQ." + "A" * 43, "__.__"],
)
def test_anything_else_names_nobody(token: str) -> None:
    assert customer_of_token([SECRET], token) is None
    assert customer_of_token([""], unsubscribe_token("", "customer-1")) is None  # no secret configured
