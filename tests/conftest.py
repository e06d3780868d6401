"""Shared fixtures of the core's own tests.

The guard: installed third-party plugins must not leak into the core's tests, so the whole
session runs with an empty plugin allow-list (``CORE_LOAD_PLUGINS=""``); tests that need
real plugins install them into a scratch virtualenv (see ``tests/scratch.py``) and run
``core`` there with a clean environment.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.scratch import ScratchEnv

os.environ["CORE_LOAD_PLUGINS"] = ""
for _name in [n for n in os.environ if n.startswith("CORE_") and n != "CORE_LOAD_PLUGINS"]:
    del os.environ[_name]


@pytest.fixture(scope="session")
def scratch_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScratchEnv]:
    """One scratch virtualenv per test session, for installing real plugin distributions."""
    yield ScratchEnv(tmp_path_factory.mktemp("venv") / "env")


@pytest.fixture()
def installed_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opt in: this test's plugin hosts load the installed third-party plugins (the guard off)."""
    monkeypatch.delenv("CORE_LOAD_PLUGINS")


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory as the current directory (its ``.core/`` state stays there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture()
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client for tests that talk to a serving gateway."""
    async with httpx.AsyncClient(timeout=30) as http:
        yield http
