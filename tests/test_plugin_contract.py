"""The compatibility policy (docs/compatibility.md) against real installed distributions: a
plugin whose ``CORE_CONTRACT`` range excludes this host's contract is listed as an error naming
both versions and is not loaded; one that declares nothing loads with a warning."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.plugins._contract import example_range
from hookspecs import __contract__
from tests.scratch import ScratchEnv

pytestmark = pytest.mark.slow

RANGES = {"old": ">=0.1,<1", "future": ">=99.0,<100", "current": example_range()}

PLUGIN = '''
from hookspecs import AdapterRegistration, hookimpl

CORE_CONTRACT = {range!r}


@hookimpl
def core_register_stores():
    return [AdapterRegistration(name="{name}", schemes=("{name}",), factory=lambda url, options: None)]
'''


def build(root: Path, name: str, contract_range: str | None) -> Path:
    """Write a tiny plugin distribution ``core-plugin-<name>`` declaring ``contract_range``."""
    src = root / name / "src" / f"core_plugin_{name}"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("")
    code = PLUGIN.format(range=contract_range, name=name)
    if contract_range is None:
        code = code.replace("CORE_CONTRACT = None\n", "")
    (src / "plugin.py").write_text(code)
    (root / name / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling>=1.25"]\nbuild-backend = "hatchling.build"\n'
        f'[project]\nname = "core-plugin-{name}"\nversion = "0.0.1"\ndependencies = []\n'
        f'[project.entry-points."core.plugins"]\n{name} = "core_plugin_{name}.plugin"\n'
        f'[tool.hatch.build.targets.wheel]\npackages = ["src/core_plugin_{name}"]\n'
    )
    return root / name


@pytest.fixture()
def contracts(scratch_env: ScratchEnv, tmp_path: Path) -> Iterator[ScratchEnv]:
    """The old, future, current and undeclared plugins installed; uninstalled afterwards."""
    ranges: dict[str, str | None] = {**RANGES, "undeclared": None}
    for name, contract_range in ranges.items():
        scratch_env.install(build(tmp_path, name, contract_range))
    yield scratch_env
    for name in ranges:
        scratch_env.uninstall(f"core-plugin-{name}")


def test_out_of_range_plugins_are_errors_naming_both_versions(contracts: ScratchEnv) -> None:
    result = contracts.core("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    for name in ("old", "future"):
        row = rows[name]
        assert row["status"] == "error"
        assert RANGES[name] in row["error"] and f"contract {__contract__}" in row["error"]
        assert row["provides"] == [] and row["hooks"] == []  # not loaded
    assert rows["current"]["status"] == "active" and rows["current"]["warning"] is None
    assert rows["current"]["provides"] == ["store:current"]
    undeclared = rows["undeclared"]
    assert undeclared["status"] == "active" and undeclared["provides"] == ["store:undeclared"]
    assert "declares no CORE_CONTRACT" in undeclared["warning"]

    table = contracts.core("plugins", "list")
    assert table.returncode == 0, table.stderr
    for name in ("old", "future"):
        line = next(line for line in table.stdout.splitlines() if line.startswith(f"{name} "))
        assert " error " in line
        expected = f"{name}: supports core contract {RANGES[name]} but this core implements contract {__contract__}"
        assert expected in table.stderr
    assert "undeclared: warning: declares no CORE_CONTRACT" in table.stderr

