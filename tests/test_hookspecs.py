"""The contract: independent of the engine, every hook documented in one template and in docs/."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import hookspecs
from hookspecs import new_id
from hookspecs._ids import LENGTH, first_id, id_time, is_id

DOCS = Path(__file__).resolve().parent.parent / "docs"


def all_hookspecs() -> list[tuple[str, object]]:
    found = []
    for spec_class in hookspecs.SPEC_CLASSES:
        for name, func in inspect.getmembers(spec_class, inspect.isfunction):
            if name.startswith("core_"):
                found.append((name, func))
    return found


def test_hookspecs_imports_nothing_from_core() -> None:
    code = (
        "import sys, hookspecs, hookspecs._ids\n"
        "leaked = sorted(m for m in sys.modules if m == 'core' or m.startswith('core.'))\n"
        "print(leaked)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_hook_is_named_core_and_marked() -> None:
    specs = all_hookspecs()
    assert len(specs) >= 14
    for name, func in specs:
        assert name.startswith("core_")
        assert hasattr(func, "core_spec"), f"{name} is not marked with @hookspec"


@pytest.mark.parametrize(("name", "func"), all_hookspecs(), ids=[n for n, _ in all_hookspecs()])
def test_every_hookspec_follows_the_docstring_template(name: str, func: object) -> None:
    doc = inspect.getdoc(func) or ""
    assert doc.split("\n")[0].strip(), f"{name}: the first line says what the hook is for"
    assert "**When called:**" in doc, f"{name}: say when it is called"
    assert ":return:" in doc, f"{name}: say what it returns"
    assert "**Example**::" in doc and "@hookimpl" in doc, f"{name}: give a short example hookimpl"
    params = [p for p in inspect.signature(func).parameters if p != "self"]  # type: ignore[arg-type]
    for param in params:
        assert f":param {param}:" in doc, f"{name}: document parameter {param!r}"


@pytest.mark.parametrize(("name", "func"), all_hookspecs(), ids=[n for n, _ in all_hookspecs()])
def test_every_hookspec_is_documented_in_docs(name: str, func: object) -> None:
    assert f"### `{name}" in (DOCS / "hooks.md").read_text(), f"docs/hooks.md lacks a section for {name}"


def test_ksuids_are_27_base62_characters_and_sort_by_time() -> None:
    early, late = new_id(at=1_700_000_000), new_id(at=1_800_000_000)
    assert len(early) == LENGTH and is_id(early) and is_id(late)
    assert early < late
    assert id_time(early).timestamp() == 1_700_000_000
    assert not is_id("not-a-ksuid") and not is_id("z" * 27)
    assert len({new_id() for _ in range(10_000)}) == 10_000


def test_the_first_id_of_a_second_sorts_before_every_id_made_in_it_or_later() -> None:
    ids = [new_id(at=1_700_000_000.9) for _ in range(100)]
    assert first_id(1_700_000_000.5) <= min(ids) and max(ids) < first_id(1_700_000_001)
    assert is_id(first_id(1_700_000_000)) and id_time(first_id(1_700_000_000)).timestamp() == 1_700_000_000


def test_schedule_defaults_and_precedence_come_from_the_seeds() -> None:
    assert hookspecs.Schedule(realtime=False, interval="@every 1h", max_retries=72) == hookspecs.DEFAULT_SCHEDULE

    class A(hookspecs.Action):
        name = "a"

    class B(hookspecs.Action):
        name = "b"
        schedule = hookspecs.Schedule(realtime=True)

    dest = hookspecs.Destination("d", actions=[A(), B()])
    assert dest.schedule_of("a") == hookspecs.DEFAULT_SCHEDULE
    assert dest.schedule_of("b").realtime
    own = hookspecs.Schedule(interval="@every 5m", max_retries=3)
    dest = hookspecs.Destination("d", actions=[A(), B()], schedule=own)
    assert dest.schedule_of("a") == own
    assert dest.schedule_of("b").realtime


def test_contract_types_refuse_bad_input_with_clear_messages() -> None:
    with pytest.raises(ValueError, match="needs an error"):
        hookspecs.Then(force_discard=True)
    with pytest.raises(ValueError, match="destination name 'bad name' is not valid"):
        hookspecs.Destination("bad name", actions=[])
    with pytest.raises(ValueError, match="must be written 'destination.action'"):
        hookspecs.Flow("f", source="s", actions=["nodot"])
    with pytest.raises(ValueError, match="must start with '/'"):
        hookspecs.HttpTrigger("t", "webhooks")
    with pytest.raises(ValueError, match="at least one URL scheme"):
        hookspecs.AdapterRegistration(name="x", schemes=(), factory=lambda u, o: None)

