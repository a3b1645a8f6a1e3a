"""Writes the reconnect prompt's API types (web/reconnect-prompt/src/api-types.d.ts) from docs/openapi.json.

Every schema of the Repair API becomes a TypeScript type, so the front end's view of the API cannot drift from the
contract: `make openapi` regenerates both, and a test fails while either is out of date.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OPENAPI = ROOT / "docs" / "openapi.json"
TYPES = ROOT / "web" / "reconnect-prompt" / "src" / "api-types.d.ts"
# Powertools' validation models: the API answers these as ValidationErrorBody, never in their own shape.
LEFT_OUT = {"HTTPValidationError", "ValidationError", "ResponseValidationError"}


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(dict.fromkeys(_type(option) for option in schema["anyOf"]))
    if "enum" in schema:
        return " | ".join(json.dumps(value) for value in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        item = _type(schema.get("items", {}))
        return f"Array<{item}>"
    if kind == "object" and "properties" not in schema:
        return "Record<string, unknown>"
    return {"string": "string", "integer": "number", "number": "number", "boolean": "boolean", "null": "null"}.get(
        str(kind), "unknown"
    )


def _comment(text: str | None, indent: str) -> list[str]:
    return [f"{indent}/** {' '.join(text.split()).replace('*/', '* /')} */"] if text else []


def _declaration(name: str, schema: dict[str, Any]) -> list[str]:
    lines = _comment(schema.get("description"), "")
    if "properties" not in schema:
        return [*lines, f"export type {name} = {_type(schema)};"]
    required = set(schema.get("required", []))
    lines.append(f"export interface {name} {{")
    for field, value in schema["properties"].items():
        lines += _comment(value.get("description"), "  ")
        lines.append(f"  {field}{'' if field in required else '?'}: {_type(value)};")
    lines.append("}")
    return lines


def declarations(openapi: dict[str, Any]) -> str:
    schemas = openapi["components"]["schemas"]
    lines = [
        "// Generated from docs/openapi.json by `make openapi` (local/make_web_types.py). Do not edit.",
        f"// {openapi['info']['title']} {openapi['info']['version']}",
        "",
    ]
    for name in sorted(set(schemas) - LEFT_OUT):
        lines += [*_declaration(name, schemas[name]), ""]
    return "\n".join(lines)


def main() -> None:
    TYPES.parent.mkdir(parents=True, exist_ok=True)
    TYPES.write_text(declarations(json.loads(OPENAPI.read_text())))
    print(f"wrote {TYPES.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
