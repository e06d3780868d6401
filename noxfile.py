"""The test matrix: the core, every plugin in its own environment, lint, types and docs.

    nox              # the default matrix (everything but bench)
    nox -l           # list the sessions
    nox -t kafka     # the sessions of one plugin or one service (tags)
    nox -s bench     # benchmarks (not in the default run)

Plugins are found by scanning ``plugins/*/pyproject.toml``: each gets a session
``plugin-<name>`` that installs only the core and that plugin (with its ``test`` extra) in a
fresh virtualenv, starts the services its ``[tool.core-plugin] services`` list names with
``.ci/services.py`` (failing loudly if one cannot be had), and runs the plugin's tests.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nox

ROOT = Path(__file__).resolve().parent
SERVICES_SCRIPT = ROOT / ".ci" / "services.py"

nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True


@dataclass(frozen=True)
class Plugin:
    """A plugin distribution under ``plugins/``, as its pyproject declares it."""

    path: Path
    name: str
    short: str
    services: tuple[str, ...]
    extras: tuple[str, ...]
    has_mypy: bool

    @property
    def requirement(self) -> str:
        """``pip install -e`` argument: the folder with its test extra, if it has one."""
        relative = self.path.relative_to(ROOT).as_posix()
        return f"{relative}[{','.join(self.extras)}]" if self.extras else relative


def _plugin(pyproject: Path) -> Plugin:
    data: dict[str, Any] = tomllib.loads(pyproject.read_text())
    project, table = data.get("project", {}), data.get("tool", {}).get("core-plugin", {})
    name = project.get("name", pyproject.parent.name)
    extras = table.get("test-extras", ["test"] if "test" in project.get("optional-dependencies", {}) else [])
    return Plugin(
        path=pyproject.parent,
        name=name,
        short=name.removeprefix("core-plugin-"),
        services=tuple(table.get("services", ())),
        extras=tuple(extras),
        has_mypy="mypy" in data.get("tool", {}),
    )


PLUGINS = [_plugin(p) for p in sorted(ROOT.glob("plugins/*/pyproject.toml"))]


def start_services(session: nox.Session, names: list[str] | tuple[str, ...]) -> None:
    """Start (or reuse) services with the project's script; a failure fails the session."""
    if names:
        session.run("python", str(SERVICES_SCRIPT), *names)


def _install_all_plugins(session: nox.Session) -> None:
    session.install("-e", ".[test]", *(arg for p in PLUGINS for arg in ("-e", p.requirement)))


@nox.session(tags=["core"])
def tests(session: nox.Session) -> None:
    """The core's own tests (installed third-party plugins are kept out by tests/conftest.py)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


def _plugin_session(plugin: Plugin) -> None:
    def run(session: nox.Session) -> None:
        session.install("-e", ".", "-e", plugin.requirement)
        start_services(session, plugin.services)
        with session.chdir(plugin.path):
            session.run("pytest", *session.posargs)

    run.__doc__ = f"{plugin.name}: its tests, with only the core and it installed" + (
        f" (services: {', '.join(plugin.services)})" if plugin.services else ""
    )
    tags = ["plugins", plugin.short, *plugin.services]
    nox.session(name=f"plugin-{plugin.short}", tags=sorted(set(tags)))(run)


for _p in PLUGINS:
    _plugin_session(_p)


@nox.session(tags=["core", "plugins"])
def plugins_vs_core(session: nox.Session) -> None:
    """Every plugin installed at once, then the core's tests again."""
    _install_all_plugins(session)
    session.run("pytest", *session.posargs)


@nox.session(tags=["static"])
def lint(session: nox.Session) -> None:
    """ruff over the whole repository (plugins extend the root configuration)."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".", *session.posargs)


@nox.session(tags=["static"])
def typecheck(session: nox.Session) -> None:
    """mypy: the core and hookspecs (strict), then each plugin with its own configuration."""
    _install_all_plugins(session)
    session.run("mypy")
    for plugin in PLUGINS:
        if plugin.has_mypy:
            with session.chdir(plugin.path):
                session.run("mypy")


@nox.session(tags=["docs"])
def docs(session: nox.Session) -> None:
    """The docs: every hook documented, generated pages current, runnable examples run."""
    session.install("-e", ".[test]")
    session.run("python", "docs/check.py")


@nox.session(default=False, tags=["bench"])
def bench(session: nox.Session) -> None:
    """The benchmarks in bench/ (they print figures); every plugin installed, services started.

    ``nox -s bench -- bench/ingest.py --duration 5`` runs one script with its arguments.
    """
    _install_all_plugins(session)
    start_services(session, sorted({s for p in PLUGINS for s in p.services}))
    if session.posargs:
        session.run("python", *session.posargs)
        return
    for script in bench_scripts():
        session.run("python", script)


def bench_scripts() -> list[str]:
    """The benchmarks runnable as they are: scripts with a ``__main__`` block and no required
    positional argument (helpers such as ``realtime_broker.py`` are run by the others)."""
    runnable = []
    for path in sorted(ROOT.glob("bench/*.py")):
        text = path.read_text()
        if "__name__ == \"__main__\"" in text and not re.search(r"add_argument\(\s*[\"'][^-]", text):
            runnable.append(str(path.relative_to(ROOT)))
    return runnable
