"""The nox matrix finds plugins by scanning ``plugins/*/pyproject.toml``: a new plugin gets
its session and tags with no edit of the noxfile, and ``bench`` stays out of the default run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

PYPROJECT = """
[project]
name = "core-plugin-demo"
version = "0.1.0"

[project.optional-dependencies]
test = ["pytest"]

[tool.core-plugin]
services = ["redis", "postgresql"]
"""


def listed(noxfile: Path, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "nox", "-f", str(noxfile), "-l", "--json", *args],
                          capture_output=True, text=True, check=True, timeout=60)
    sessions: list[dict[str, Any]] = json.loads(done.stdout)
    return sessions


def test_a_new_plugin_gets_a_tagged_session(tmp_path: Path) -> None:
    noxfile = tmp_path / "noxfile.py"
    shutil.copy(REPO / "noxfile.py", noxfile)
    (tmp_path / "plugins" / "core-plugin-demo").mkdir(parents=True)
    (tmp_path / "plugins" / "core-plugin-demo" / "pyproject.toml").write_text(PYPROJECT)
    sessions = {s["name"]: s for s in listed(noxfile)}
    assert set(sessions) == {"tests", "chaos", "plugin-demo", "browser", "lint", "typecheck", "docs", "wheels"}
    assert set(sessions["plugin-demo"]["tags"]) == {"plugins", "demo", "redis", "postgresql"}
    assert [s["name"] for s in listed(noxfile, "-t", "redis")] == ["plugin-demo"]


def test_every_plugin_of_the_repository_has_a_session() -> None:
    names = {s["name"] for s in listed(REPO / "noxfile.py")}
    for pyproject in REPO.glob("plugins/*/pyproject.toml"):
        assert f"plugin-{pyproject.parent.name.removeprefix('core-plugin-')}" in names
    assert "bench" not in names
