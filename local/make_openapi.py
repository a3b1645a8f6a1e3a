"""Writes docs/openapi.json, the Repair API's contract, generated from the handler's routes and models.

Run `make openapi` after changing a route or a model; a test fails while the committed document is out of date.
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from functions.repair_api.app import app

OPENAPI = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


def document() -> str:
    schema = app.get_openapi_json_schema(
        title="connection-repair Repair API",
        version="1.0.0",
        description=(
            "The signed-in customer's bank connections, what to do about each, a fresh Meld connect token to repair "
            "one, and notification preferences. Every route needs a JWT from the configured issuer; the caller is "
            "its customer claim (default `sub`), the externalCustomerId given to Meld."
        ),
        security_schemes={"jwt": HTTPBearer(bearerFormat="JWT")},
        security=[{"jwt": []}],
    )
    document = json.loads(schema)
    for operations in document["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                if status == "204":
                    response.pop("content", None)  # a 204 has no body, whatever the handler's return type says
    # Sorted and indented: a stable, reviewable diff.
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main() -> None:
    OPENAPI.write_text(document())
    print(f"wrote {OPENAPI.relative_to(Path.cwd()) if OPENAPI.is_relative_to(Path.cwd()) else OPENAPI}")


if __name__ == "__main__":
    main()
