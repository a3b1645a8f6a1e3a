"""env.json (for `sam local`) stays in step with template.yaml and the local stack's names."""

from __future__ import annotations

import json

import pytest

from local.env_json import ENV_JSON, generate
from local.template import Resolver, functions, load_template

pytestmark = pytest.mark.e2e


def test_env_json_is_generated_from_the_current_template() -> None:
    # Regenerate with `python -m local.env_json` after changing a function's environment.
    assert json.loads(ENV_JSON.read_text()) == generate()


def test_every_function_of_the_template_has_an_entry() -> None:
    template = load_template()
    names = {spec.name for spec in functions(template, Resolver(template))}
    assert names == set(json.loads(ENV_JSON.read_text()))
