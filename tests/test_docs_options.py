"""The adapters' option tables in docs/ are generated from their schemas, and docs/check.py
fails when one is missing or stale."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hookspecs import AdapterRegistration, Option, number

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_options_reference", DOCS / "options_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _adapter(reference: ModuleType, page: Path, **fields: Any) -> Any:
    registration = AdapterRegistration(name="demo", schemes=("demo",), factory=lambda url, options: None, **fields)
    return reference.Adapter(page, "pubsub", registration, shared=False)


def test_every_adapter_with_a_schema_has_a_current_table() -> None:
    reference = _reference()
    assert list(reference.problems()) == []
    labels = {a.label for a in reference.adapters() if a.registration.options is not None}
    assert {"store:sqlite", "wanderer:sqlite", "pubsub:memory", "supervisor:local", "store:postgresql"} <= labels


def test_a_table_lists_type_default_help_and_allowed_and_marks_secrets(tmp_path: Path) -> None:
    reference = _reference()
    adapter = _adapter(reference, tmp_path / "demo.md", options={
        "batch": Option(number(int, 1), 256, "a whole number >= 1", help="messages per pull"),
        "token": Option(str, "", "a string", help="the API token", secret=True),
    })
    table = reference.table(adapter)
    assert "| `batch` | integer | `256` | messages per pull | a whole number >= 1 |" in table
    assert "| `token` (secret: never shown) | string |" in table
    assert "or in the URL query (`demo://...?option=value`), which wins" in table


@pytest.mark.parametrize(("text", "problem"), [
    ("# Demo\n", "has no option table for the pubsub:demo adapter"),
    ("<!-- options pubsub:demo -->\nold\n<!-- /options pubsub:demo -->\n", "an option table is out of date"),
])
def test_a_missing_or_stale_table_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               text: str, problem: str) -> None:
    reference = _reference()
    page = tmp_path / "demo.md"
    page.write_text(text)
    adapter = _adapter(reference, page, options={"batch": Option(number(int, 1), 256, "a whole number >= 1")})
    monkeypatch.setattr(reference, "adapters", lambda: [adapter])
    [found] = reference.problems()
    assert problem in found and "python docs/options_reference.py" in found
    page.write_text(reference.render(page, page.read_text(), [adapter]))
    if "<!--" in text:
        assert list(reference.problems()) == []


def test_a_registration_without_a_schema_keeps_what_its_markers_hold(tmp_path: Path) -> None:
    reference = _reference()
    page = tmp_path / "demo.md"
    text = "<!-- options pubsub:demo -->\nwritten by hand\n<!-- /options pubsub:demo -->\n"
    assert reference.render(page, text, [_adapter(reference, page)]) == text
