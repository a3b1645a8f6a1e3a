from __future__ import annotations

import pytest

from connection_repair.domain.status_policy import ENDS_EPISODE, NEEDS_ATTENTION, Action, classify, is_known

# Meld's table of connection errors and reasons: status, reason -> what the customer should do.
MELD_TABLE = [
    ("IN_PROGRESS", None, Action.NONE),
    ("EXPIRED", None, Action.START_NEW_CONNECTION),
    ("DELETED", None, Action.START_NEW_CONNECTION),
    ("ACTIVE", None, Action.NONE),
    ("ACTIVE", "ACCESS_EXPIRING_SOON", Action.RENEW_ACCESS),
    ("ACTIVE", "NEW_ACCOUNTS_AVAILABLE", Action.ADD_ACCOUNTS),
    ("PARTIALLY_ACTIVE", "PARTIAL_AGGREGATION_SUCCESS", Action.NONE),
    ("PARTIALLY_ACTIVE", "INACTIVE_DUPLICATE", Action.NONE),
    ("DEGRADED", "INSTITUTION_CURRENTLY_UNAVAILABLE", Action.WAIT),
    ("DEGRADED", "SERVICE_PROVIDER_CURRENTLY_UNAVAILABLE", Action.WAIT),
    ("DEGRADED", "INSTITUTION_ACTION_REQUIRED", Action.REPAIR),
    ("DEGRADED", "INTERACTIVE_REFRESH", Action.REPAIR),
    ("RECONNECT_REQUIRED", "LOGIN_REQUIRED", Action.REPAIR),
    ("RECONNECT_REQUIRED", "TOKEN_EXPIRED", Action.REPAIR),
    ("RECONNECT_REQUIRED", "OTHER", Action.REPAIR),
    ("RECONNECT_REQUIRED", "REPAIRING_INSTITUTION", Action.REPAIR),
    ("UNRECOVERABLE", "CONTINUED_AGGREGATION_FAILURES", Action.REPAIR),
    ("UNDETERMINED", None, Action.WAIT),
]


@pytest.mark.parametrize(("status", "reason", "action"), MELD_TABLE)
def test_meld_documented_states_map_to_the_customers_action(status, reason, action):
    assert classify(status, reason) == action
    assert is_known(status, reason)


@pytest.mark.parametrize(
    ("status", "reason", "action"),
    [
        ("CUSTOMER_ACTION_REQUIRED", None, Action.REPAIR),
        ("DEGRADED", "CUSTOMER_ACTION_REQUIRED", Action.REPAIR),
        ("RECONNECT_AVAILABLE", None, Action.ADD_ACCOUNTS),
        ("ACTIVE", "RECONNECT_AVAILABLE", Action.ADD_ACCOUNTS),
    ],
)
def test_legacy_names_from_older_api_versions_are_accepted(status, reason, action):
    assert classify(status, reason) == action


def test_reason_unknown_for_a_known_status_falls_back_to_the_status():
    assert classify("RECONNECT_REQUIRED", "SOMETHING_NEW") == Action.REPAIR
    assert classify("ACTIVE", "SOMETHING_NEW") == Action.NONE
    assert not is_known("RECONNECT_REQUIRED", "SOMETHING_NEW")


def test_unknown_status_is_classified_conservatively_as_wait():
    assert classify("QUANTUM_SUPERPOSITION", None) == Action.WAIT
    assert classify(None, None) == Action.WAIT
    assert classify("DEGRADED", "SOMETHING_NEW") == Action.WAIT
    assert not is_known("QUANTUM_SUPERPOSITION", None)


def test_wait_neither_opens_nor_closes_an_episode():
    assert Action.WAIT not in NEEDS_ATTENTION
    assert Action.WAIT not in ENDS_EPISODE
