"""The hook contract is true: every hookspec is called by the engine and exercised by a test,
and the hooks no other test names do what their docstrings say."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.errors import PipelineError
from core.gateway.ingest import Ingestor
from core.runtime import Runtime
from hookspecs import ADAPTER_KINDS, SPEC_CLASSES, EventDraft, Migration
from tests import hooks_app
from tests.gateway_kit import settings_for

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(name for spec in SPEC_CLASSES for name in vars(spec) if name.startswith("core_"))


def _engine_text() -> str:
    """The engine's code, without the places that implement hooks (built-in plugin modules,
    the scaffold's templates) rather than call them."""
    skip = {ROOT / "core" / "builtin" / kind / "plugin.py" for kind in ("memory", "local", "sqlite")}
    files = [p for p in (ROOT / "core").rglob("*.py") if p not in skip and "scaffold" not in p.parts]
    return "\n".join(p.read_text() for p in files)


def _called(name: str, engine: str) -> bool:
    """Does the engine call ``name``: by attribute, by name (``collect`` / ``fan_out``), or as
    the registration hook of an adapter kind, which the registry collects from the kinds table?"""
    if re.search(rf"\.hook\.{name}\b|[\"']{name}[\"']", engine):
        return True
    hooks = {kind.hook for kind in ADAPTER_KINDS.values()}
    return name in hooks and "collect(pm, spec.hook" in engine


def test_every_hookspec_is_called_by_the_engine() -> None:
    engine = _engine_text()
    assert len(HOOKS) >= 14
    assert [name for name in HOOKS if not _called(name, engine)] == []


def test_every_hookspec_is_exercised_by_a_test() -> None:
    this = Path(__file__).resolve()
    texts = [p.read_text() for p in [*ROOT.glob("tests/**/*.py"), *ROOT.glob("plugins/*/tests/**/*.py")]
             if p.resolve() != this]
    assert [name for name in HOOKS if not any(name in text for text in texts)] == []


async def test_adapter_and_lifecycle_hooks_are_called_with_what_they_promise(tmp_path: Path) -> None:
    hooks_app.CALLS.clear()
    settings = settings_for(
        tmp_path, app="tests.hooks_app", supervisor="recorded://x",
        wanderer=f"recorded+sqlite:///{tmp_path / 'wanderer.db'}",
    )
    runtime = await Runtime.open(settings, services=["gateway"], no_plugins=True)
    try:
        assert [m.version for m in runtime.pipeline.migrations] == ["001"]
        assert isinstance(runtime.pipeline.migrations[0], Migration)
        ingestor = Ingestor(runtime)
        await ingestor.ingest("shop", "orders", [EventDraft(name="order.created", data={"n": 1})])
        await ingestor.close()
    finally:
        await runtime.close()
    assert [
        ("supervisor factory", "recorded://x"),
        ("wanderer factory", f"recorded+sqlite:///{tmp_path / 'wanderer.db'}"),
        ("core_startup", "gateway"),
        ("core_event_ingested", ["order.created"]),
        ("core_shutdown", "gateway"),
    ] == hooks_app.CALLS


async def test_a_scope_version_offered_twice_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "twice.py").write_text(
        "from hookspecs import Migration, hookimpl\n"
        "async def step():\n    return None\n"
        "@hookimpl\ndef core_register_migrations():\n"
        "    return [Migration('001', 'd:sink', 'one', step, step), Migration('001', 'd:sink', 'two', step, step)]\n"
    )
    with pytest.raises(PipelineError, match="two migrations of d:sink have version 001: 'one'"):
        await Runtime.open(settings_for(tmp_path, app=str(tmp_path / "twice.py")), services=[], no_plugins=True)


def test_core_migrate_and_core_start_call_core_register_migrations(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from core.cli import main

    db = tmp_path / "core.db"
    (tmp_path / "core.toml").write_text(
        f'app = "tests.hooks_app"\nstore = "sqlite:///{db}"\nwanderer = "sqlite:///{db}"\npubsub = ""\n')
    args = ["--config", str(tmp_path / "core.toml")]
    refused = CliRunner().invoke(main, [*args, "start", "--require-migrations", "--port", "0"],
                                 env={"CORE_ADMIN_PORT": "0"})
    assert refused.exit_code == 2 and "destination:sink 001 create the sink's table" in refused.output
    assert CliRunner().invoke(main, [*args, "migrate", "run"]).exit_code == 0
    rows = json.loads(CliRunner().invoke(main, [*args, "migrate", "status", "--json"]).output)
    assert [(r["scope"], r["version"], r["status"]) for r in rows] == [("destination:sink", "001", "succeeded (up)")]
