"""Writes docs/reference/admin-api-routes.md from the admin API's OpenAPI document, the one
``GET /admin/api/openapi.json`` serves (built here in-process from the same endpoints), so the
route reference never drifts (``docs/check.py`` checks the page is current). The prose guide is
docs/admin-api.md.

Run: ``python docs/admin_api_reference.py``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from core.admin.app import endpoints
from core.admin.endpoints import openapi

TARGET = Path(__file__).resolve().parent / "reference" / "admin-api-routes.md"
HEADER = """# Admin API routes

Every route of the admin API (`core start admin`), generated from its OpenAPI document by
`python docs/admin_api_reference.py`: the same document `GET /admin/api/openapi.json` serves.
How to run, authenticate and use it: [The admin API](../admin-api.md). Every route takes a
bearer token (`Authorization: Bearer …`, see `admin.tokens` in
[Configuration](../configuration.md)); a write route refuses a read-only token with `403`.
Errors are `{"error": "…"}`.
"""


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def schema(value: Any) -> str:
    return cell(json.dumps(value, sort_keys=True))


def operation(method: str, path: str, op: dict[str, Any]) -> str:
    parts = [f"### `{method.upper()} {path}`\n\n{op['summary']} (`{op['operationId']}`, {op['tags'][0]}).\n"]
    if op["parameters"]:
        rows = ["| parameter | in | required | schema | what |", "| --- | --- | --- | --- | --- |"]
        rows += [f"| `{p['name']}` | {p['in']} | {'yes' if p['required'] else 'no'} | `{schema(p['schema'])}` "
                 f"| {cell(p['description'])} |" for p in op["parameters"]]
        parts.append("\n" + "\n".join(rows) + "\n")
    if "requestBody" in op:
        body = op["requestBody"]["content"]["application/json"]["schema"]
        parts.append(f"\nBody: `{schema(body)}`\n")
    answers = ", ".join(f"`{code}` {cell(r['description'])}" for code, r in op["responses"].items())
    parts.append(f"\nAnswers: {answers}.\n")
    return "".join(parts)


def render() -> str:
    """The whole page."""
    document = openapi(endpoints())
    parts = [HEADER]
    for path, methods in sorted(document["paths"].items()):
        for method, op in methods.items():
            parts.append("\n" + operation(method, path, op))
    return "".join(parts)


if __name__ == "__main__":
    TARGET.write_text(render())
    sys.stdout.write(f"wrote {TARGET}\n")
