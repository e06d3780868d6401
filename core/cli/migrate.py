"""``core migrate``: the status of every migration, and ``ack``, ``run``, ``rollback``, ``discard``.

Migrations come from the plugins and the app (``core_register_migrations``), from sources,
triggers, destinations and actions, and from the ``migrations/`` folder of the project
(:mod:`core.wanderer.collect`). The history is the configured wanderer's; each scope is migrated
under the supervisor's lease ``migrations:<scope>``, so a second runner is refused, naming the
holder (or waits, ``--wait``). ``core start`` reports pending migrations with :func:`check_pending`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from core.cli._common import Context, friendly, pass_context, table
from core.cli._store import echo_json, when
from core.errors import CoreError
from core.pipeline import Pipeline
from core.plugins import PluginHost
from core.wanderer.collect import Collected, collect_migrations
from core.wanderer.runner import MigrationRunner, Progress, VersionState, changed, default_actor
from core.wanderer.scopes import canonical
from hookspecs import Direction, Migration, Status, Supervisor, Toolkit, Wanderer, new_id, redacted_url

T = TypeVar("T")


@dataclass(slots=True)
class Session:
    """What a ``core migrate`` command works with."""

    host: PluginHost
    collected: Collected
    runner: MigrationRunner
    folder: Path


def _toolkit_factory(host: PluginHost, node_id: str) -> Callable[[str], Toolkit]:
    def make(owner: str) -> Toolkit:
        return Toolkit(logger=logging.getLogger(f"core.{owner}"), node_id=node_id, service="cli",
                       options=host.settings.section(owner))
    return make


async def _open(adapter: Any, kind: str, url: str) -> None:
    try:
        await adapter.open()
    except CoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - any driver error: reported, one line
        shown = " ".join(str(exc).replace(url, redacted_url(url)).split())
        raise CoreError(
            f"could not open the {kind} at {redacted_url(url)}: {type(exc).__name__}: {shown}",
            hint=f"check '{kind}' in your configuration (core config show) and that the server is running",
        ) from None


def build_runner(
    host: PluginHost, pipeline: Pipeline, wanderer: Wanderer, supervisor: Supervisor | None, *,
    folder: Path, node_id: str, wait: float = 0.0, progress: Progress | None = None,
) -> tuple[Collected, MigrationRunner]:
    """Collect the application's migrations and a runner over them."""
    from core.builtin.local.supervisor import LocalSupervisor

    collected = collect_migrations(
        pipeline, folder, toolkit=_toolkit_factory(host, node_id), store_url=host.settings.resolve_url(
            host.settings["store"]),
    )
    runner = MigrationRunner(
        wanderer, collected.migrations, supervisor=supervisor, owner=default_actor(),
        shared=not isinstance(supervisor, LocalSupervisor), wait=wait, around=collected.around, progress=progress,
    )
    return collected, runner


def with_session(ctx: Context, folder: str | None, work: Callable[[Session], Awaitable[T]], *,
                 wait: float = 0.0, progress: Progress | None = None) -> T:
    """Load the app, open the wanderer and the supervisor (no service starts), run ``work``."""
    host = ctx.host()
    pipeline = Pipeline.from_host(host)
    wanderer: Wanderer | None = host.create("wanderer")
    if wanderer is None:
        raise CoreError("no wanderer is configured: the history of migrations has nowhere to go",
                        hint="set wanderer = \"sqlite:///.core/core.db\" (or a postgresql:// URL) in core.toml")
    supervisor: Supervisor | None = host.create("supervisor")
    root = Path(folder) if folder else host.settings.root / "migrations"

    async def run() -> T:
        async with contextlib.AsyncExitStack() as stack:
            await _open(wanderer, "wanderer", host.settings["wanderer"])
            stack.push_async_callback(wanderer.close)
            if supervisor is not None:
                await _open(supervisor, "supervisor", host.settings["supervisor"])
                stack.push_async_callback(supervisor.close)
            collected, runner = build_runner(host, pipeline, wanderer, supervisor, folder=root, node_id=new_id(),
                                             wait=wait, progress=progress)
            return await work(Session(host, collected, runner, root))
        raise AssertionError("unreachable")  # pragma: no cover

    return asyncio.run(run())


def _scopes(session: Session, given: Sequence[str]) -> list[str] | None:
    """Canonical ``--scope`` values, each known (``None``: all)."""
    if not given:
        return None
    known = sorted({*session.runner.scopes, *session.collected.owners})
    out = []
    for text in given:
        scope = canonical(text)
        if scope not in known:
            raise CoreError(f"unknown scope {text!r}: no source, trigger, destination or action of that name",
                            hint=f"scopes with migrations: {', '.join(session.runner.scopes) or 'none'}")
        out.append(scope)
    return list(dict.fromkeys(out))


def _check_version(session: Session, scopes: Sequence[str] | None, version: str | None) -> None:
    if version is None or version == "0":
        return
    among = scopes if scopes is not None else session.runner.scopes
    versions = sorted({m.version for s in among for m in session.runner.migrations(s)})
    if version not in versions:
        raise CoreError(f"bad version {version!r}: no migration of {', '.join(among) or 'any scope'} has it",
                        hint=f"known versions: {', '.join(versions) or 'none'} (core migrate status lists them)")


def _describe(migration: Migration) -> str:
    return f"{migration.scope} {migration.version} {migration.name}"


def _progress(verb: str) -> Progress:
    """A progress bar on a terminal, plain lines otherwise."""
    tty = sys.stdout.isatty()

    def show(migration: Migration, direction: Direction, index: int, total: int) -> None:
        if tty:
            width = 24
            filled = width * index // max(total, 1)
            line = f"\r[{'#' * filled}{'.' * (width - filled)}] {index + 1}/{total} {verb} {_describe(migration)}"
            click.echo(line[:110].ljust(110), nl=False)
        else:
            click.echo(f"{verb} {index + 1}/{total}: {_describe(migration)}")

    return show


def _done(verb: str, done: Sequence[Migration]) -> None:
    if sys.stdout.isatty() and done:
        click.echo("\r" + " " * 110 + "\r", nl=False)
    if not done:
        click.echo(f"nothing to {verb}")
        return
    for migration in done:
        click.echo(f"{verb}: {_describe(migration)}" if sys.stdout.isatty() else f"ok: {_describe(migration)}")
    plural = "s" if len(done) != 1 else ""
    click.echo(f"{len(done)} migration{plural} {'applied' if verb == 'apply' else 'rolled back'}")


_dir = click.option("--dir", "folder", metavar="DIR", default=None,
                    help="The migrations folder [default: migrations/ beside the configuration].")
_scope = click.option("--scope", "scopes", multiple=True, metavar="SCOPE",
                      help="source:S, source/trigger:S/T, destination:D, destination/action:D/A "
                           "(or s:, s/t:, d:, d/a:), store; repeatable [default: every scope].")
_wait = click.option("--wait", type=click.FloatRange(0), default=0.0, show_default=True, metavar="SECONDS",
                     help="Wait this long for a scope another process is migrating, instead of failing.")


@click.group("migrate")
def migrate() -> None:
    """Versioned migrations of every scope: status, ack, run, rollback, discard."""


# -- status ---------------------------------------------------------------------------------

def status_rows(runner: MigrationRunner, states: dict[str, dict[str, VersionState]]) -> list[dict[str, Any]]:
    """One row per migration of the scopes in ``states`` (known, or only in the history), by
    scope then version."""
    rows: list[dict[str, Any]] = []
    for scope in sorted(states):
        known = {m.version: m for m in runner.migrations(scope)}
        for version in sorted({*known, *states.get(scope, {})}):
            state = states.get(scope, {}).get(version)
            migration = known.get(version)
            run = state.latest if state is not None else None
            shown = state.last if state is not None and state.last is not None else run
            if shown is None:
                status = "pending"
            elif shown.status is Status.ACKNOWLEDGED:
                status = "acknowledged"
            elif shown.status is Status.DISCARDED:
                status = "discarded"
            else:
                status = f"{shown.status.value} ({shown.direction.value})"
            rows.append({
                "scope": scope, "version": version,
                "name": migration.name if migration is not None else (run.name if run else ""),
                "status": status,
                "direction": shown.direction.value if shown is not None else None,
                "applied": bool(state and state.applied),
                "pending": migration is not None and not (state and (state.applied or state.discarded)),
                "changed": migration is not None and changed(migration, state),
                "offered": migration is not None,
                "when": shown.created_at if shown is not None else None,
                "by": shown.actor if shown is not None else None,
                "error": shown.error if shown is not None else None,
            })
    return rows


@migrate.command("status")
@_scope
@_dir
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@pass_context
@friendly
def status(ctx: Context, scopes: tuple[str, ...], folder: str | None, as_json: bool) -> None:
    """Every migration: version, name, scope, status, when and by whom."""

    async def work(session: Session) -> list[dict[str, Any]]:
        selected = _scopes(session, scopes)
        runner = session.runner
        names = selected if selected is not None else sorted({*runner.scopes})
        states = {name: await runner.states(name) for name in names}
        if selected is None:  # scopes known only from the history
            for run in await runner.wanderer.history():
                if run.scope not in states:
                    states[run.scope] = await runner.states(run.scope)
        return status_rows(runner, states)

    rows = with_session(ctx, folder, work)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No migrations: add some with core generate migration NAME --scope SCOPE")
        return

    def cell(row: dict[str, Any]) -> list[str]:
        flags = [*(["changed since it ran: ack it"] if row["changed"] else []),
                 *(["not offered by this release"] if not row["offered"] else [])]
        return [row["version"], row["name"], row["scope"], row["status"] + (f" ({'; '.join(flags)})" if flags else ""),
                when(row["when"]), row["by"] or "-"]

    click.echo(table(("VERSION", "NAME", "SCOPE", "STATUS", "WHEN", "BY"), [cell(r) for r in rows]))
    pending = sum(1 for r in rows if r["pending"])
    click.echo(f"\n{pending} pending, {sum(1 for r in rows if r['applied'])} applied")
    failed = [r for r in rows if r["status"].startswith("failed")]
    for row in failed:
        click.echo(f"failed: {row['scope']} {row['version']}: {row['error']}")


# -- ack / discard ------------------------------------------------------------------------------

@migrate.command("ack")
@_scope
@click.option("--version", metavar="VERSION", help="Only this version.")
@_dir
@pass_context
@friendly
def ack(ctx: Context, scopes: tuple[str, ...], version: str | None, folder: str | None) -> None:
    """Acknowledge new migrations, and accept files changed after they ran."""

    async def work(session: Session) -> list[Migration]:
        selected = _scopes(session, scopes)
        _check_version(session, selected, version)
        done: list[Migration] = []
        for scope in selected or session.runner.scopes:
            done += await session.runner.ack(scope, version=version)
        return done

    done = with_session(ctx, folder, work)
    for migration in done:
        click.echo(f"acknowledged: {_describe(migration)}")
    click.echo(f"{len(done)} acknowledged" if done else "nothing to acknowledge")


@migrate.command("discard")
@click.option("--scope", "scope", required=True, metavar="SCOPE", help="The migration's scope.")
@click.option("--version", required=True, metavar="VERSION", help="The migration's version.")
@_dir
@pass_context
@friendly
def discard(ctx: Context, scope: str, version: str, folder: str | None) -> None:
    """Mark a migration that must never run (it is skipped by every run)."""

    async def work(session: Session) -> Migration:
        [name] = _scopes(session, [scope]) or [scope]
        return await session.runner.discard(name, version)

    migration = with_session(ctx, folder, work)
    click.echo(f"discarded: {_describe(migration)}")


# -- run / rollback ---------------------------------------------------------------------------

@migrate.command("run")
@_scope
@click.option("--version", metavar="VERSION", help="Apply up to this version (included).")
@click.option("--dry-run", is_flag=True, help="Print what would run, run nothing.")
@_wait
@_dir
@pass_context
@friendly
def run(ctx: Context, scopes: tuple[str, ...], version: str | None, dry_run: bool, wait: float,
        folder: str | None) -> None:
    """Apply pending migrations, scope by scope in version order; stop at the first failure."""

    async def work(session: Session) -> list[Migration]:
        selected = _scopes(session, scopes)
        _check_version(session, selected, version)
        runner = session.runner
        if dry_run:
            planned: list[Migration] = []
            for scope in selected or runner.scopes:
                planned += await runner.pending(scope, to=version)
            return planned
        return await runner.up(selected, to=version)

    done = with_session(ctx, folder, work, wait=wait, progress=None if dry_run else _progress("applying"))
    if dry_run:
        for migration in done:
            click.echo(f"would apply: {_describe(migration)}")
        click.echo(f"{len(done)} pending (dry run: nothing ran)")
        return
    _done("apply", done)


@migrate.command("rollback")
@_scope
@click.option("--version", metavar="VERSION",
              help="Roll back to this version (it stays applied; 0 rolls back all) [default: the newest one].")
@click.option("--dry-run", is_flag=True, help="Print what would be rolled back, run nothing.")
@_wait
@_dir
@pass_context
@friendly
def rollback(ctx: Context, scopes: tuple[str, ...], version: str | None, dry_run: bool, wait: float,
             folder: str | None) -> None:
    """Roll migrations back, newest first: to --version, or the newest applied one of each scope."""

    async def work(session: Session) -> list[Migration]:
        selected = _scopes(session, scopes)
        _check_version(session, selected, version)
        runner = session.runner
        done: list[Migration] = []
        for scope in selected or runner.scopes:
            if dry_run:
                states = await runner.states(scope)
                applied = sorted((v for v, s in states.items() if s.applied and (version is None or v > version)),
                                 reverse=True)
                known = {m.version: m for m in runner.migrations(scope)}
                done += [known[v] for v in (applied if version is not None else applied[:1]) if v in known]
                continue
            done += await runner.down(scope, to=version, steps=None if version is not None else 1)
        return done

    done = with_session(ctx, folder, work, wait=wait, progress=None if dry_run else _progress("rolling back"))
    if dry_run:
        for migration in done:
            click.echo(f"would roll back: {_describe(migration)}")
        click.echo(f"{len(done)} to roll back (dry run: nothing ran)")
        return
    _done("roll back", done)


# -- core start ---------------------------------------------------------------------------------

def _remember(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta["core.require_migrations"] = True
    return value


#: ``core start --require-migrations`` (its value is kept in the click context's meta).
require_migrations_option = click.option(
    "--require-migrations", is_flag=True, expose_value=False, callback=_remember,
    help="Refuse to start while migrations are pending [default: warn].",
)


def required_migrations() -> bool:
    """Was ``--require-migrations`` given to the running ``core start`` command?"""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get("core.require_migrations"))


async def check_pending(runtime: Any, *, require: bool) -> list[Migration]:
    """At start-up: warn about pending migrations, or refuse to start (``--require-migrations``)."""
    if runtime.wanderer is None:
        if require:
            raise CoreError("--require-migrations: no wanderer is configured to tell what ran",
                            hint="set 'wanderer' in core.toml, or start without --require-migrations")
        return []
    _, runner = build_runner(runtime.host, runtime.pipeline, runtime.wanderer, None,
                             folder=runtime.settings.root / "migrations", node_id=runtime.node_id)
    pending = await runner.pending()
    stale = await runner.changed()
    if not pending and not stale:
        return []
    what = ", ".join(_describe(m) for m in [*pending, *stale][:5]) + (" …" if len(pending) + len(stale) > 5 else "")
    message = (f"{len(pending)} pending migration(s){f' and {len(stale)} changed' if stale else ''}: {what}")
    if require:
        raise CoreError(f"{message}; refusing to start (--require-migrations)",
                        hint="run them first: core migrate run (core migrate status lists them)")
    click.echo(f"warning: {message}; run them with: core migrate run", err=True)
    return pending

