"""``core generate plugin``: the plugin it writes installs, is listed, and runs the conformance
kit, which fails with the stub's "implement …" messages until the plugin is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.cli import main
from core.scaffold.plugin import KINDS
from tests.scratch import REPO, ScratchEnv

PROVIDES = {"store": "store", "pubsub": "pubsub", "supervisor": "supervisor", "wanderer": "wanderer"}


def generate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["generate", "plugin", *args])
    return result.exit_code, result.output


def test_writes_a_plugin_under_plugins_by_default(project: Path) -> None:
    code, output = generate("my-db")
    assert code == 0, output
    root = project / "plugins" / "core-plugin-my-db"
    for relative in ["pyproject.toml", "README.md", "src/core_plugin_my_db/__init__.py",
                     "src/core_plugin_my_db/py.typed", "src/core_plugin_my_db/plugin.py",
                     "src/core_plugin_my_db/adapter.py", "tests/test_store.py"]:
        assert (root / relative).is_file(), relative
    pyproject = (root / "pyproject.toml").read_text()
    assert 'my_db = "core_plugin_my_db.plugin"' in pyproject
    assert "[tool.core-plugin]" in pyproject and 'extend = "../../pyproject.toml"' in pyproject
    plugin = (root / "src/core_plugin_my_db/plugin.py").read_text()
    assert plugin.index("def _factory") < plugin.index("from core_plugin_my_db.adapter import"), "not lazy"


def test_a_standalone_plugin_does_not_extend_the_repository(tmp_path: Path) -> None:
    code, output = generate("ext", "--kind", "pubsub", "--path", str(tmp_path / "ext"))
    assert code == 0, output
    assert "extend" not in (tmp_path / "ext" / "pyproject.toml").read_text()


@pytest.mark.parametrize("args", [["Bad_Name"], ["x", "--kind", "queue"]])
def test_bad_names_and_kinds_are_refused(tmp_path: Path, args: list[str]) -> None:
    code, output = generate(*args, "--path", str(tmp_path / "out"))
    assert code != 0
    assert "not valid" in output or "Invalid value" in output
    assert not (tmp_path / "out").exists()


def test_an_existing_directory_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    code, output = generate("x", "--path", str(tmp_path / "taken"))
    assert code == 2 and "not empty" in output
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_generated_plugins_install_are_listed_and_fail_the_kit_until_written(tmp_path: Path) -> None:
    env = ScratchEnv(tmp_path / "venv")
    dirs = {}
    for kind in KINDS:
        dirs[kind] = tmp_path / f"demo-{kind}"
        code, output = generate(f"demo-{kind}", "--kind", kind, "--path", str(dirs[kind]))
        assert code == 0, output
    env.pip("install", "--no-deps", "--quiet", *map(str, dirs.values()))
    listed = env.core("plugins", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    records = {r["name"]: r for r in json.loads(listed.stdout)}
    for kind in KINDS:
        record = records[f"demo_{kind}"]
        assert record["status"] == "active", record
        assert record["distribution"] == f"core-plugin-demo-{kind}"
        if kind in PROVIDES:
            assert record["provides"] == [f"{kind}:demo_{kind}"]
        else:
            assert record["hooks"] == [f"core_register_{kind}s"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")}
    for kind, path in dirs.items():
        run = subprocess.run([str(env.python), "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=path,
                             capture_output=True, text=True, env=clean, timeout=300, check=False)
        assert run.returncode == 1, f"{kind}: the kit passed on a stub:\n{run.stdout[-3000:]}"
        assert "NotImplementedError" in run.stdout and f"core-plugin-demo-{kind}: implement" in run.stdout, (
            f"{kind}:\n{run.stdout[-3000:]}")
        assert " passed" in run.stdout or " failed" in run.stdout


@pytest.mark.slow
def test_the_wheel_ships_the_templates_and_renders_from_them(tmp_path: Path) -> None:
    """The templates are package data: a plugin renders from the built wheel itself (a zip on
    ``sys.path``, read through importlib.resources), not only from this checkout."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(REPO)],
                   check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = tmp_path.glob("core-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    templates = {f"core/scaffold/templates/{p.name}" for p in (REPO / "core/scaffold/templates").iterdir()}
    assert templates and templates <= shipped
    code = (
        f"import sys; sys.path.insert(0, {str(wheel)!r}); from core.scaffold import plugin; "
        f"assert plugin.__file__.startswith({str(wheel)!r}), plugin.__file__; "
        "print([sorted(plugin.render(plugin.check_spec('x', k), in_repo=False)) for k in plugin.KINDS])"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "src/core_plugin_x/adapter.py" in run.stdout and "tests/test_destination.py" in run.stdout
