"""The test matrix: the core, every plugin in its own environment, lint, types and docs.

    nox              # the default matrix (everything but bench)
    nox -l           # list the sessions
    nox -t kafka     # the sessions of one plugin or one service (tags)
    nox -s bench     # benchmarks (not in the default run)
    nox -s chaos     # the reliability battery alone (in the default run, not in ``tests``)

Plugins are found by scanning ``plugins/*/pyproject.toml``: each gets a session
``plugin-<name>`` that installs only the core and that plugin (with its ``test`` extra) in a
fresh virtualenv, starts the services its ``[tool.core-plugin] services`` list names with
``.ci/services.py`` (failing loudly if one cannot be had), and runs the plugin's tests. Around
it, ``.ci/leftovers.py`` checks that the session left the shared services as it found them and
no process of its own running (see ``docs/nox.md``). ``wheels`` builds installable wheels of
the core and every plugin into ``dist/wheels/``.
"""

from __future__ import annotations

import re
import secrets
import shutil
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nox

ROOT = Path(__file__).resolve().parent
SERVICES_SCRIPT = ROOT / ".ci" / "services.py"
LEFTOVERS_SCRIPT = ROOT / ".ci" / "leftovers.py"
#: Marks the processes of a session (``.ci/leftovers.py``); not ``CORE_*``, which the test
#: kit's ``Deployment`` strips from the processes it starts.
SESSION_MARK = "CI_SESSION_MARK"
WHEELS = ROOT / "dist" / "wheels"

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


def start_services(
    session: nox.Session, names: list[str] | tuple[str, ...], env: dict[str, str] | None = None
) -> None:
    """Start (or reuse) services with the project's script; a failure fails the session."""
    if names:
        session.run("python", str(SERVICES_SCRIPT), *names, env=env)


@contextmanager
def leaving_no_trace(session: nox.Session) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """Snapshot the shared services, give the block the environments that mark the session's
    processes (for ``.ci/services.py``, for the tests), and at its end, pass or fail, stop
    every marked process and fail the session if a shared service changed or a test left a
    process running."""
    mark = secrets.token_hex(6)
    before = Path(session.create_tmp()).resolve() / f"services-{mark}.json"
    session.run("python", str(LEFTOVERS_SCRIPT), "snapshot", str(before), silent=True)
    try:
        yield {SESSION_MARK: f"{mark}:services"}, {SESSION_MARK: f"{mark}:tests"}
    finally:
        session.run("python", str(LEFTOVERS_SCRIPT), "check", str(before), "--mark", mark)


def _install_all_plugins(session: nox.Session) -> None:
    session.install("-e", ".[test]", *(arg for p in PLUGINS for arg in ("-e", p.requirement)))


#: The tests session leaves the reliability battery (marker ``chaos``) to its own session.
NOT_CHAOS = ("-m", "not chaos")
#: The chaos session's wall-time budget, in seconds (issue 20: under 20 minutes).
CHAOS_BUDGET = 20 * 60


@nox.session(tags=["core", "postgresql"])
def tests(session: nox.Session) -> None:
    """The core's own tests (installed third-party plugins are kept out by tests/conftest.py;
    the tests that run on PostgreSQL too, such as the admin API's, enable its plugin themselves)."""
    session.install("-e", ".[test]", "-e", "plugins/core-plugin-postgres")
    with leaving_no_trace(session) as (services_env, tests_env):
        start_services(session, ["postgresql"], services_env)
        session.run("pytest", *NOT_CHAOS, *session.posargs, env=tests_env)


@nox.session(tags=["core", "chaos", "postgresql"])
def chaos(session: nox.Session) -> None:
    """The reliability battery: real processes under faults (signals, kills, poison events, a
    blocked event loop), on SQLite and PostgreSQL, each test printing what it measured in a
    "chaos figures" section, and its wall time, which must stay under :data:`CHAOS_BUDGET`
    seconds to keep the battery in the default run (docs/guarantees.md)."""
    session.install("-e", ".[test]", "-e", "plugins/core-plugin-postgres", "-e", "plugins/core-plugin-nats")
    with leaving_no_trace(session) as (services_env, tests_env):
        start_services(session, ["postgresql", "nats"], services_env)
        started = time.monotonic()
        session.run("pytest", "-m", "chaos", "--durations=0", *session.posargs, env=tests_env)
        took = time.monotonic() - started
        session.log(f"chaos wall time: {took:.0f}s (budget {CHAOS_BUDGET}s)")
        if took > CHAOS_BUDGET:
            session.error(f"the chaos session took {took:.0f}s, over its {CHAOS_BUDGET}s budget: make a test cheaper")


def _plugin_session(plugin: Plugin) -> None:
    def run(session: nox.Session) -> None:
        session.install("-e", ".", "-e", plugin.requirement)
        with leaving_no_trace(session) as (services_env, tests_env):
            start_services(session, plugin.services, services_env)
            with session.chdir(plugin.path):
                session.run("pytest", *session.posargs, env=tests_env)

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
    with leaving_no_trace(session) as (_, tests_env):
        session.run("pytest", *NOT_CHAOS, *session.posargs, env=tests_env)


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
    """The docs: every hook documented, generated pages current, runnable examples run (the
    Segment page's example needs that plugin, which needs no service)."""
    session.install("-e", ".[test]", "-e", "plugins/core-plugin-segment")
    session.run("python", "docs/check.py")


@nox.session(tags=["packaging"])
def wheels(session: nox.Session) -> None:
    """Wheels of the core and every plugin in dist/wheels/, checked by a fresh install from there.

    The install is what the docs promise: ``pip install --find-links dist/wheels
    core-plugin-postgres`` in a new virtualenv (``nox -s wheels -- core-plugin-kafka …``
    installs those instead).
    """
    shutil.rmtree(WHEELS, ignore_errors=True)
    WHEELS.mkdir(parents=True)
    sources = [".", *(p.path.relative_to(ROOT).as_posix() for p in PLUGINS)]
    session.run("python", "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(WHEELS), *sources)
    built = sorted(path.name for path in WHEELS.glob("*.whl"))
    expected = ["core", *(p.name for p in PLUGINS)]
    missing = [name for name in expected
               if not any(wheel.startswith(name.replace("-", "_") + "-") for wheel in built)]
    if missing:
        session.error(f"no wheel of {', '.join(missing)} in {WHEELS}: {built}")
    session.log(f"{len(built)} wheels in {WHEELS.relative_to(ROOT)}: {', '.join(built)}")
    venv = Path(session.create_tmp()).resolve() / "install-check"
    shutil.rmtree(venv, ignore_errors=True)
    session.run("python", "-m", "venv", str(venv))
    python = str(venv / "bin" / "python")
    wanted = session.posargs or ["core-plugin-postgres"]
    session.run(python, "-m", "pip", "install", "--find-links", str(WHEELS), *wanted, external=True)
    session.run(python, str(ROOT / ".ci" / "installed_from.py"), str(WHEELS), *wanted, external=True)


@nox.session(default=False, tags=["bench"])
def bench(session: nox.Session) -> None:
    """The benchmarks in bench/ (they print figures); every plugin installed, services started.

    ``nox -s bench -- bench/ingest.py --duration 5`` runs one script with its arguments.
    """
    _install_all_plugins(session)
    session.install("-e", ".[bench]")
    with leaving_no_trace(session) as (services_env, run_env):
        start_services(session, sorted({s for p in PLUGINS for s in p.services}), services_env)
        for script in [session.posargs] if session.posargs else [[s] for s in bench_scripts()]:
            session.run("python", *script, env=run_env)


def bench_scripts() -> list[str]:
    """The benchmarks runnable as they are: scripts with a ``__main__`` block and no required
    positional argument (helpers such as ``realtime_broker.py`` are run by the others), then the
    peers (``bench/peers/``)."""
    runnable = []
    for path in [*sorted(ROOT.glob("bench/*.py")), *sorted(ROOT.glob("bench/peers/*.py"))]:
        text = path.read_text()
        if "__name__ == \"__main__\"" in text and not re.search(r"add_argument\(\s*[\"'][^-]", text):
            runnable.append(str(path.relative_to(ROOT)))
    return runnable
