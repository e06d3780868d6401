"""docs/admin-api.md documents every route of the admin API's OpenAPI schema (generated from the
route definitions): each is in a route table with its method, and the page's runnable example
(which ``docs/check.py`` runs) calls it. A route added without its documentation fails here."""

from __future__ import annotations

import re
from pathlib import Path

from core.admin.app import endpoints
from core.admin.endpoints import PREFIX, openapi

PAGE = Path(__file__).resolve().parent.parent / "docs" / "admin-api.md"
RUNNABLE = re.compile(r"^<!-- run( pytest)? -->\n```python\n(.*?)^```", re.M | re.S)
PLACEHOLDER = re.compile(r"\{[^}]*\}")


def _routes() -> list[tuple[str, str]]:
    """Every ``(METHOD, path)`` of the schema, the path without its ``/admin/api`` prefix."""
    paths = openapi(list(endpoints()))["paths"]
    return sorted((method.upper(), path.removeprefix(PREFIX)) for path, ops in paths.items() for method in ops)


def _tabled(page: str) -> set[tuple[str, str]]:
    """The ``(METHOD, path)`` named in the first cell of the page's table rows (placeholders as
    ``{}``): a cell lists paths in backticks, each after the method of the first."""
    named: set[tuple[str, str]] = set()
    for row in re.findall(r"^\| (`(?:GET|POST) [^|]*)\|", page, re.M):
        method = row.split()[0].strip("`")
        for path in re.findall(r"`(?:(?:GET|POST) )?(/[^`]*)`", row):
            named.add((method, PLACEHOLDER.sub("{}", path)))
    return named


def _called(example: str, method: str, path: str) -> bool:
    """Whether ``example`` calls ``api.<method>("<path>")``, any value in the placeholders."""
    pattern = "".join(
        "[^\"/]+" if part == "{}" else re.escape(part) for part in re.split(r"(\{\})", PLACEHOLDER.sub("{}", path))
    )
    return re.search(rf"\.{method.lower()}\(\s*f?\"{pattern}[\"?]", example) is not None


def test_every_route_of_the_schema_is_in_a_route_table() -> None:
    tabled = _tabled(PAGE.read_text())
    missing = [f"{m} {p}" for m, p in _routes() if (m, PLACEHOLDER.sub("{}", p)) not in tabled]
    assert not missing, f"docs/admin-api.md's route tables do not list {missing}"


def test_the_runnable_example_calls_every_route() -> None:
    examples = "\n".join(code for _, code in RUNNABLE.findall(PAGE.read_text()))
    assert examples, "docs/admin-api.md has no runnable example"
    missing = [f"{m} {p}" for m, p in _routes() if not _called(examples, m, p)]
    assert not missing, f"docs/admin-api.md's runnable example does not call {missing}"


def test_the_check_finds_an_undocumented_route() -> None:
    page = PAGE.read_text().replace("`GET /nodes`", "`GET /nobody`")
    assert ("GET", "/nodes") not in _tabled(page)
    assert not _called('api.get("/nodes/x")', "GET", "/nodes"), "a longer path counted as the route"
    assert _called('api.get(f"/store/jobs/{job.id}/transitions")', "GET", "/store/jobs/{job}/transitions")
