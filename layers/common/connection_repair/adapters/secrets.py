"""Secrets: from Secrets Manager in AWS (cached by Powertools parameters), or given directly for local runs."""

from __future__ import annotations

import json
from collections.abc import Callable

from pydantic import SecretStr

CACHE_SECONDS = 300


def _fetch(name: str) -> str:
    # Imported here: only deployments that name a secret pay for the parameters utility at cold start.
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(name, max_age=CACHE_SECONDS)
    return value if isinstance(value, str) else json.dumps(value)


# The stack creates each secret holding a random value marked with this key, so that nothing signed or sent with it
# can work; until the operator puts the real value in (which drops the mark), the secret counts as not configured.
PLACEHOLDER_MARK = "placeholder"


def secret_values(raw: str, keys: tuple[str, ...]) -> list[str]:
    """A secret's usable values: a plain string, or the named keys of a JSON object (in order); none while the
    secret still holds the stack's placeholder."""
    try:
        document = json.loads(raw)
    except ValueError:
        return [raw]
    if isinstance(document, dict):
        if document.get(PLACEHOLDER_MARK):
            return []
        return [str(document[key]) for key in keys if document.get(key)]
    return [raw]


def secret_source(
    *, name: str | None, direct: tuple[SecretStr | None, ...], keys: tuple[str, ...]
) -> Callable[[], list[str]]:
    """A callable giving the secret's current values: direct ones when set, else the named secret's."""
    values = [value.get_secret_value() for value in direct if value is not None]
    if values or name is None:
        return lambda: values
    secret_name = name
    return lambda: secret_values(_fetch(secret_name), keys)
