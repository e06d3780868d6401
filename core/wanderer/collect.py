"""Every migration of an application, and the owner that runs each scope's files.

Migrations come from ``core_register_migrations`` (``Pipeline.migrations``), from the
``migrations`` of sources, triggers, destinations and actions, and from the ``migrations/``
folder (:mod:`core.wanderer.files`). A file is run by its owner's ``migrate(toolkit, script)``:
a trigger's or an action's own, else its source's or destination's (the parent's logic is
inherited); files of the ``store`` scope run as SQL on the store's database. The owners'
``init`` runs before the steps of their scope and ``shutdown`` after (:meth:`Collected.around`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import CoreError
from core.pipeline import Pipeline
from core.wanderer.files import MigrationFiles, read_directory
from core.wanderer.scopes import STORE, Scope, ScopeError, canonical, parse_scope
from hookspecs import Action, Destination, Direction, Migration, Source, Toolkit, Trigger

SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb")


@dataclass(slots=True)
class Collected:
    """The migrations found, and how to wrap and run each scope's steps."""

    migrations: list[Migration]
    #: scope -> the objects owning it, parent first (``[destination, action]``).
    owners: dict[str, list[Any]] = field(default_factory=dict)
    toolkit: Callable[[str], Toolkit] | None = None

    @contextlib.asynccontextmanager
    async def around(self, scope: str) -> AsyncIterator[None]:
        """``init`` the scope's owners (parent first) before its steps, ``shutdown`` after."""
        owners = self.owners.get(scope, [])
        started: list[Any] = []
        try:
            for owner in owners:
                try:
                    await owner.init(self._toolkit(owner))
                except CoreError:
                    raise
                except Exception as exc:
                    first = (str(exc).strip().splitlines() or [""])[0]
                    raise CoreError(f"{owner!r} failed to start (init) before the migrations of {scope}: "
                                    f"{type(exc).__name__}: {first}",
                                    hint="fix its configuration, then run the migrations again") from exc
                started.append(owner)
            yield
        finally:
            for owner in reversed(started):
                await owner.shutdown(self._toolkit(owner))

    def _toolkit(self, owner: Any) -> Toolkit:
        assert self.toolkit is not None
        return self.toolkit(owner.name)


def owner_objects(pipeline: Pipeline, scope: Scope) -> list[Any]:
    """The source/destination (and trigger/action) a scope names; :class:`ScopeError` if none."""
    if scope.kind == STORE:
        return []
    is_source = scope.kind.startswith("source")
    kind, child_kind = ("source", "trigger") if is_source else ("destination", "action")
    registered: dict[str, Any] = pipeline.sources if is_source else pipeline.destinations
    parent = registered.get(scope.names[0])
    if parent is None:
        raise ScopeError(f"scope {scope}: no {kind} {scope.names[0]!r} is registered",
                         hint=f"registered {kind}s: {', '.join(sorted(registered)) or 'none'}")
    if len(scope.names) == 1:
        return [parent]
    children: dict[str, Any] = parent.triggers if is_source else parent.actions
    child = children.get(scope.names[1])
    if child is None:
        raise ScopeError(f"scope {scope}: {kind} {parent.name!r} has no {child_kind} {scope.names[1]!r}",
                         hint=f"its {child_kind}s: {', '.join(children)}")
    return [parent, child]


def _overrides_migrate(obj: Any) -> bool:
    for base in (Source, Trigger, Destination, Action):
        if isinstance(obj, base):
            return type(obj).migrate is not base.migrate
    return callable(getattr(obj, "migrate", None))


def _file_migration(
    files: MigrationFiles, owners: list[Any], toolkit: Callable[[str], Toolkit], store_url: str
) -> Migration:
    async def run(direction: Direction) -> None:
        script = files.script(direction)
        if not owners:  # the store's database
            if store_url.partition(":")[0].partition("+")[0] not in SQL_SCHEMES:
                raise CoreError(f"{script.path}: the store ({store_url.partition(':')[0]}://) is not a SQL database",
                                hint="move the file to the scope of a destination that runs SQL")
            from core.sqlstore.scripts import run_script

            await run_script(store_url, script.text)
            return
        runner = next((o for o in reversed(owners) if _overrides_migrate(o)), None)
        if runner is None:
            kind = "destination" if isinstance(owners[0], Destination) else "source"
            raise CoreError(
                f"{kind} {owners[0].name!r} has no migrate() to run {script.path}",
                hint=f"give the {kind} (or the {'action' if kind == 'destination' else 'trigger'}) an async "
                     "migrate(toolkit, script) method, or use a destination that runs SQL (core-plugin-sql)",
            )
        await runner.migrate(toolkit(runner.name), script)

    async def up() -> None:
        await run(Direction.UP)

    async def down() -> None:
        await run(Direction.DOWN)

    return Migration(files.version, files.scope, files.name.replace("_", " "), up, down, checksum=files.checksum)


def _declared(where: str, own: str, migrations: Sequence[Migration]) -> list[Migration]:
    out = []
    for migration in migrations:
        if not isinstance(migration, Migration):
            raise CoreError(f"{where}: migrations holds {migration!r}, not a Migration")
        if not migration.scope:
            migration = dataclasses.replace(migration, scope=own)
        elif canonical(migration.scope) != own:
            raise CoreError(f"{where} declares a migration of scope {migration.scope!r}",
                            hint=f"it may declare migrations of its own scope only ({own})")
        out.append(dataclasses.replace(migration, scope=own))
    return out


def collect_migrations(
    pipeline: Pipeline, folder: Path, *, toolkit: Callable[[str], Toolkit], store_url: str
) -> Collected:
    """Every migration of the application, with canonical scopes."""
    found: list[Migration] = []
    owners: dict[str, list[Any]] = {}
    for migration in pipeline.migrations:
        try:
            found.append(dataclasses.replace(migration, scope=canonical(migration.scope)))
        except ScopeError as exc:
            raise CoreError(f"core_register_migrations: migration {migration.version} ({migration.name}): "
                            f"{exc.message}", hint=exc.hint) from None
    for source in pipeline.sources.values():
        own = f"source:{source.name}"
        found += _declared(f"source {source.name!r}", own, source.migrations)
        owners[own] = [source]
        for trigger in source.triggers.values():
            scope = f"source/trigger:{source.name}/{trigger.name}"
            found += _declared(f"trigger {source.name}/{trigger.name}", scope, trigger.migrations)
            owners[scope] = [source, trigger]
    for destination in pipeline.destinations.values():
        own = f"destination:{destination.name}"
        found += _declared(f"destination {destination.name!r}", own, destination.migrations)
        owners[own] = [destination]
        for action in destination.actions.values():
            scope = f"destination/action:{destination.name}/{action.name}"
            found += _declared(f"action {destination.name}/{action.name}", scope, action.migrations)
            owners[scope] = [destination, action]
    for files in read_directory(folder):
        try:
            chain = owner_objects(pipeline, parse_scope(files.scope))
        except ScopeError as exc:
            raise CoreError(f"migration folder {files.up.parent}: {exc.message}", hint=exc.hint) from None
        found.append(_file_migration(files, chain, toolkit, store_url))
    owners[STORE] = []
    return Collected(found, owners, toolkit)
