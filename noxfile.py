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

import os
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
CHROMIUM_SCRIPT = ROOT / ".ci" / "chromium.py"
#: Marks the processes of a session (``.ci/leftovers.py``); not ``CORE_*``, which the test
#: kit's ``Deployment`` strips from the processes it starts.
SESSION_MARK = "CI_SESSION_MARK"
WHEELS = ROOT / "dist" / "wheels"

nox.options.reuse_venv = "yes"
#: Sessions' virtualenvs are made and filled by uv (a test extra): seconds instead of a minute
#: per session. Seeded with pip, which the tests and ``.ci/services.py`` run in the session's
#: interpreter.
nox.options.default_venv_backend = "uv"
os.environ.setdefault("UV_VENV_SEED", "1")
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


#: The tests session leaves the reliability battery (marker ``chaos``), the browser tests
#: (marker ``browser``) and the site and tutorial tests (marker ``docs``: the docs extra, NATS,
#: more plugins) to their own sessions.
NOT_CHAOS = ("-m", "not chaos and not docs and not browser")
#: The chaos session's wall-time budget, in seconds (issue 20: under 20 minutes).
CHAOS_BUDGET = 20 * 60
#: The tests proving a guarantee of the battery (docs/guarantees.md) that live beside the code
#: they test and stay in the sessions of that code too: the chaos session runs them as well,
#: after the tests marked ``chaos``. Fencing of a frozen holder (6), one idempotency key
#: through two gateways (12), fuzzing (13), the auth matrices (15), the store model (18).
CHAOS_ALSO = (
    "tests/test_conformance_builtin.py::TestSQLiteSupervisor::test_a_frozen_holder_process_wakes_up_fenced",
    "tests/test_idempotency_processes.py::test_one_key_through_two_gateways_stores_one_event",
    "tests/test_gateway_fuzz.py::test_no_request_gets_a_5xx_or_logs_a_traceback",
    "tests/test_admin_fuzz.py::test_no_5xx_and_answers_match_the_schema",
    "tests/test_gateway_auth.py::test_api_key_matrix",
    "tests/test_gateway_auth.py::test_standard_webhook_matrix",
    "tests/test_gateway_auth.py::test_hmac_matrix",
    "tests/test_admin_api.py::test_the_auth_matrix",
    "tests/test_gateway_auth_canary.py::test_no_secret_in_the_debug_log",
    "tests/test_store_model.py",
)
#: The same for a plugin's tests, run from the plugin's directory as its own session does: the
#: core's tests/conftest.py keeps installed plugins out of a run it takes part in.
CHAOS_ALSO_PLUGINS = {
    "plugins/core-plugin-postgres": (
        "tests/test_conformance.py::TestSupervisor::test_a_frozen_holder_process_wakes_up_fenced",
        "tests/test_conformance.py::TestStoreModel",
    ),
}


@nox.session(tags=["core", "plugins", "postgresql"])
def tests(session: nox.Session) -> None:
    """The core's own tests, with every plugin of the repository installed: the plugins and
    their dependencies must not break the core, and tests/conftest.py keeps them out of the
    tests unless a test opts in (the tests that run on PostgreSQL too, such as the admin API's,
    enable its plugin themselves). The core alone with one plugin is what each
    ``plugin-<name>`` session installs."""
    _install_all_plugins(session)
    with leaving_no_trace(session) as (services_env, tests_env):
        start_services(session, ["postgresql"], services_env)
        session.run("pytest", *NOT_CHAOS, *session.posargs, env=tests_env)


@nox.session(tags=["core", "chaos", "postgresql"])
def chaos(session: nox.Session) -> None:
    """The reliability battery: real processes under faults (signals, kills, poison events, a
    blocked event loop, a private PostgreSQL or NATS stopped), on SQLite and PostgreSQL, each
    test printing what it measured in a "chaos figures" section; then :data:`CHAOS_ALSO`. Its
    wall time (both runs) is printed and must stay under :data:`CHAOS_BUDGET`
    seconds to keep the battery in the default run (docs/guarantees.md)."""
    session.install("-e", ".[test]", "-e", "plugins/core-plugin-postgres", "-e", "plugins/core-plugin-nats")
    session.run("python", str(ROOT / ".ci" / "faketime.py"))  # the clocks of tests/test_chaos_cron_clocks.py
    with leaving_no_trace(session) as (services_env, tests_env):
        start_services(session, ["postgresql", "nats"], services_env)
        started = time.monotonic()
        session.run("pytest", "-m", "chaos", "--durations=0", *session.posargs, env=tests_env)
        if not session.posargs:  # with arguments (one test, say) only those run
            session.run("pytest", "--durations=0", *CHAOS_ALSO, env=tests_env)
            for plugin_dir, plugin_tests in CHAOS_ALSO_PLUGINS.items():
                with session.chdir(plugin_dir):
                    session.run("pytest", "--durations=0", *plugin_tests, env=tests_env)
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


@nox.session(tags=["core", "browser"])
def browser(session: nox.Session) -> None:
    """The dashboard in a real browser: Debian's chromium (installed by ``.ci/chromium.py`` when
    missing) driven by Playwright; screenshots are left in ``artifacts/dashboard/``."""
    session.install("-e", ".[test,browser]")
    session.run("python", str(CHROMIUM_SCRIPT))
    with leaving_no_trace(session) as (_, tests_env):
        session.run("pytest", "-m", "browser", "--durations=0", *session.posargs, env=tests_env)


@nox.session(tags=["static"])
def lint(session: nox.Session) -> None:
    """ruff over the whole repository (plugins extend the root configuration)."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".", *session.posargs)


@nox.session(tags=["static"])
def typecheck(session: nox.Session) -> None:
    """mypy: the core and hookspecs (strict), then each plugin with its own configuration.

    One cache for every run, so a plugin's run reuses what the runs before it learnt of the core
    and the shared dependencies (mypy re-checks a module whose options differ)."""
    _install_all_plugins(session)
    env = {"MYPY_CACHE_DIR": str(ROOT / ".mypy_cache")}
    session.run("mypy", env=env)
    for plugin in PLUGINS:
        if plugin.has_mypy:
            with session.chdir(plugin.path):
                session.run("mypy", env=env)


@nox.session(tags=["docs", "postgresql", "nats"])
def docs(session: nox.Session) -> None:
    """The docs: every hook documented, generated pages current, runnable examples run (the
    Segment page's example needs that plugin, which needs no service), the site built with
    ``mkdocs build --strict`` (a broken link or a page missing from the nav fails), and the
    tutorial followed end to end (tests/test_tutorial.py: PostgreSQL, NATS and the plugins it
    installs)."""
    session.install(
        "-e", ".[test,docs]",
        *(arg for name in ("segment", "postgres", "sql", "http", "nats")
          for arg in ("-e", f"plugins/core-plugin-{name}")),
    )
    with leaving_no_trace(session) as (services_env, tests_env):
        start_services(session, ["postgresql", "nats"], services_env)
        session.run("python", "docs/check.py", env=tests_env)
        session.run("mkdocs", "build", "--strict", "--site-dir", str(Path(session.create_tmp()) / "site"),
                    env={"NO_MKDOCS_2_WARNING": "1"})
        session.run("pytest", "-m", "docs", *session.posargs, env=tests_env)


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
