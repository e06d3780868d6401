"""The migration runner: apply pending migrations, roll back to a version, record every run.

Given a :class:`~hookspecs.Wanderer` (the history) and the :class:`~hookspecs.Migration` objects
plugins, the pipeline and the ``migrations/`` folder offer, :class:`MigrationRunner` applies what
is pending, scope by scope in version order, and rolls a scope back (``down``, newest first) to a
target version. Each run is recorded as it goes: ``acknowledged``, ``executing``, then
``succeeded`` or ``failed`` with the error, with who ran it and the file's checksum. The first
failure stops the runner (the versions before it stay applied) and is raised as a
:class:`MigrationFailed` naming the scope, version and error. ``discarded`` marks a migration
that must never run; a migration whose file changed after it ran is refused until acknowledged
again (:meth:`MigrationRunner.ack`).

With a :class:`~hookspecs.Supervisor`, each scope is migrated under a lease
(``migrations:<scope>``) so that one node at a time migrates it; the lease is renewed before
every step and a lost lease stops the runner before the next step. What is pending is read
again once the lease is held, so a runner that waited for another finds its work done.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

from core.errors import CoreError
from hookspecs import Direction, Lease, Migration, MigrationRun, Status, Supervisor, Wanderer, new_id

#: Called before each step: (migration, direction, index from 0, steps planned).
Progress = Callable[[Migration, Direction, int, int], None]
#: Wraps the steps of one scope (its owner's ``init`` before, ``shutdown`` after).
Around = Callable[[str], contextlib.AbstractAsyncContextManager[Any]]


class MigrationFailed(CoreError):
    """A migration raised, was refused, or could not be run safely."""


def default_actor() -> str:
    """Who runs migrations from this process: ``user@host (pid N)``."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = "?"
    return f"{user}@{socket.gethostname()} (pid {os.getpid()})"


@dataclass(frozen=True, slots=True)
class VersionState:
    """What the history says about one version of a scope."""

    #: The latest transition that is not an ``acknowledged`` mark (``None``: never ran).
    last: MigrationRun | None
    #: The latest transition of any status (``acknowledged`` included).
    latest: MigrationRun | None
    #: The checksum last recorded for it (``None``: none recorded).
    checksum: str | None

    @property
    def applied(self) -> bool:
        return self.last is not None and self.last.direction is Direction.UP and self.last.status is Status.SUCCEEDED

    @property
    def discarded(self) -> bool:
        return self.last is not None and self.last.status is Status.DISCARDED


def version_states(history: Sequence[MigrationRun]) -> dict[str, VersionState]:
    """The state of every version in ``history`` (one scope's, oldest first)."""
    out: dict[str, VersionState] = {}
    for run in history:
        before = out.get(run.version, VersionState(None, None, None))
        out[run.version] = VersionState(
            last=before.last if run.status is Status.ACKNOWLEDGED else run,
            latest=run,
            checksum=run.checksum if run.checksum is not None else before.checksum,
        )
    return out


def changed(migration: Migration, state: VersionState | None) -> bool:
    """Is the migration applied, and did its file change since it was run or last acknowledged?"""
    return (
        state is not None and state.applied and migration.checksum is not None and state.checksum is not None
        and state.checksum != migration.checksum
    )


class MigrationRunner:
    """Runs migrations against a wanderer's history.

    :param wanderer: where runs are recorded and applied versions read.
    :param migrations: every known migration, of any scopes, in any order.
    :param supervisor: when given, a scope is migrated only while holding its lease.
    :param owner: who holds the lease and is recorded as having run (``user@host (pid N)``).
    :param lease_ttl: seconds the lease lasts between renewals (one per step).
    :param shared: does ``supervisor`` lock across processes? When not (``local://``), a run
        another process has in progress on the scope is refused, saying so.
    :param wait: seconds to wait for a scope another node is migrating (0: refuse at once).
    :param around: wraps the steps of each scope (its owner's ``init`` / ``shutdown``).
    :param progress: called before each step.
    """

    def __init__(
        self,
        wanderer: Wanderer,
        migrations: Sequence[Migration],
        *,
        supervisor: Supervisor | None = None,
        owner: str | None = None,
        lease_ttl: float = 300.0,
        shared: bool = True,
        wait: float = 0.0,
        around: Around | None = None,
        progress: Progress | None = None,
    ) -> None:
        seen: dict[tuple[str, str], Migration] = {}
        for migration in migrations:
            key = (migration.scope, migration.version)
            if key in seen:
                raise MigrationFailed(
                    f"two migrations of {migration.scope} have version {migration.version}: "
                    f"{seen[key].name!r} and {migration.name!r}",
                    hint="give every migration of a scope its own version",
                )
            seen[key] = migration
        self.wanderer = wanderer
        self.supervisor = supervisor
        self.owner = owner or default_actor()
        self.lease_ttl = lease_ttl
        self.shared = shared
        self.wait = wait
        self.around = around
        self.progress = progress
        ordered = sorted(seen.values(), key=lambda m: (m.scope, m.version))
        self._by_scope = {scope: list(group) for scope, group in groupby(ordered, key=lambda m: m.scope)}

    @property
    def scopes(self) -> list[str]:
        """The scopes that have migrations, sorted."""
        return list(self._by_scope)

    def migrations(self, scope: str) -> list[Migration]:
        """The known migrations of ``scope``, in version order."""
        return list(self._by_scope.get(scope, []))

    async def states(self, scope: str) -> dict[str, VersionState]:
        """The state of every version of ``scope`` that has a history."""
        return version_states(await self.wanderer.history(scope))

    async def pending(self, scope: str | None = None, *, to: str | None = None) -> list[Migration]:
        """Migrations not applied nor discarded yet (up to version ``to``), by scope then version."""
        out: list[Migration] = []
        for name in self._selected(scope):
            out += self._pending(name, await self.states(name), to)
        return out

    def _pending(self, scope: str, states: dict[str, VersionState], to: str | None = None) -> list[Migration]:
        return [
            m for m in self._by_scope.get(scope, [])
            if (to is None or m.version <= to)
            and not (states.get(m.version) and (states[m.version].applied or states[m.version].discarded))
        ]

    async def changed(self, scope: str | None = None) -> list[Migration]:
        """Migrations whose file changed since they were last run or acknowledged."""
        out: list[Migration] = []
        for name in self._selected(scope):
            states = await self.states(name)
            out += [m for m in self._by_scope.get(name, []) if changed(m, states.get(m.version))]
        return out

    async def up(self, scope: str | Sequence[str] | None = None, *, to: str | None = None) -> list[Migration]:
        """Apply every pending migration (of one scope, some or all, up to ``to``); return those applied."""
        for name in self._selected(scope):
            self._refuse_changed(name, await self.states(name))
        plan = [(name, await self.pending(name, to=to)) for name in self._selected(scope)]
        plan = [(name, steps) for name, steps in plan if steps]
        total = sum(len(steps) for _, steps in plan)
        done: list[Migration] = []
        for name, _ in plan:
            done += await self._run(name, Direction.UP, functools.partial(self._pending, name, to=to),
                                    total, len(done))
        return done

    async def down(self, scope: str, *, to: str | None = None, steps: int | None = None) -> list[Migration]:
        """Roll ``scope`` back, newest first, until only versions ``<= to`` are applied
        (``to=None``: all of them), or by ``steps`` versions; return those rolled back."""
        def plan(states: dict[str, VersionState]) -> list[Migration]:
            versions = sorted((v for v, s in states.items() if s.applied and (to is None or v > to)), reverse=True)
            if steps is not None:
                versions = versions[:steps]
            known = {m.version: m for m in self._by_scope.get(scope, [])}
            missing = [v for v in versions if v not in known]
            if missing:
                raise MigrationFailed(
                    f"cannot roll back {scope}: version(s) {', '.join(missing)} are applied but no "
                    "installed plugin offers them",
                    hint="install the release that has these migrations, or pick a later target version",
                )
            return [known[v] for v in versions]

        states = await self.states(scope)
        planned = plan(states)
        if not planned:
            return []
        self._refuse_changed(scope, states, planned)
        return await self._run(scope, Direction.DOWN, plan, len(planned), 0)

    async def ack(self, scope: str | None = None, *, version: str | None = None) -> list[Migration]:
        """Acknowledge new migrations and accept changed files as they are now: each gets an
        ``acknowledged`` mark with its current checksum (nothing runs). Return those marked."""
        done: list[Migration] = []
        for name in self._selected(scope):
            states = await self.states(name)
            for migration in self._by_scope.get(name, []):
                if version is not None and migration.version != version:
                    continue
                state = states.get(migration.version)
                if state is None or state.latest is None or changed(migration, state):
                    await self._record(migration, Direction.UP, Status.ACKNOWLEDGED)
                    done.append(migration)
        return done

    async def discard(self, scope: str, version: str) -> Migration:
        """Mark a migration that must never run as ``discarded``; refused if it is applied."""
        migration = next((m for m in self._by_scope.get(scope, []) if m.version == version), None)
        if migration is None:
            known = ", ".join(m.version for m in self._by_scope.get(scope, [])) or "none"
            raise MigrationFailed(f"{scope} has no migration of version {version}", hint=f"its versions: {known}")
        state = (await self.states(scope)).get(version)
        if state is not None and state.applied:
            raise MigrationFailed(
                f"{scope} {version} ({migration.name}) is applied: it cannot be discarded",
                hint=f"roll it back first: core migrate rollback --scope {scope} --version <the one before>",
            )
        await self._record(migration, Direction.UP, Status.DISCARDED)
        return migration

    def _selected(self, scope: str | Sequence[str] | None) -> list[str]:
        if scope is None:
            return self.scopes
        return [scope] if isinstance(scope, str) else list(scope)

    def _refuse_changed(
        self, scope: str, states: dict[str, VersionState], among: Sequence[Migration] | None = None
    ) -> None:
        for migration in among if among is not None else self._by_scope.get(scope, []):
            state = states.get(migration.version)
            if changed(migration, state):
                raise MigrationFailed(
                    f"migration {scope} {migration.version} ({migration.name}) changed after it ran "
                    "(its checksum differs from the recorded one)",
                    hint=f"check the change, then accept it with: core migrate ack --scope {scope} "
                         f"--version {migration.version}",
                )

    async def _run(
        self,
        scope: str,
        direction: Direction,
        plan: Callable[[dict[str, VersionState]], list[Migration]],
        total: int,
        offset: int,
    ) -> list[Migration]:
        lease = await self._acquire(scope)
        try:
            states = await self.states(scope)
            if not self.shared:
                self._refuse_in_progress(scope, states)
            steps = plan(states)  # read again under the lease: another node may have run them
            if not steps:
                return []
            done: list[Migration] = []
            async with self.around(scope) if self.around is not None else _nothing():
                for index, migration in enumerate(steps):
                    lease = await self._renew(scope, lease)
                    if self.progress is not None:
                        self.progress(migration, direction, offset + index, max(total, offset + len(steps)))
                    await self._step(migration, direction)
                    done.append(migration)
            return done
        finally:
            if lease is not None and self.supervisor is not None:
                await self.supervisor.release(lease)

    def _refuse_in_progress(self, scope: str, states: dict[str, VersionState]) -> None:
        recent = datetime.now(UTC) - timedelta(seconds=self.lease_ttl)
        for state in states.values():
            run = state.latest
            if (run is not None and run.status in (Status.ACKNOWLEDGED, Status.EXECUTING) and run.actor
                    and run.actor != self.owner and state.last is not None and state.last.status is Status.EXECUTING
                    and run.created_at > recent):
                raise MigrationFailed(
                    f"{scope} is being migrated by {run.actor} (since {run.created_at:%H:%M:%S} UTC), and the "
                    "supervisor (local://) locks within one process only",
                    hint="wait for it to finish, or set 'supervisor' to a shared one (postgresql://…) "
                         "to run migrations from several processes",
                )

    async def _step(self, migration: Migration, direction: Direction) -> None:
        await self._record(migration, direction, Status.ACKNOWLEDGED)
        await self._record(migration, direction, Status.EXECUTING)
        try:
            await (migration.up if direction is Direction.UP else migration.down)()
        except Exception as exc:
            text = exc.message if isinstance(exc, CoreError) else f"{type(exc).__name__}: {exc}"
            error = " ".join((text.strip().splitlines() or [""])[0].split())  # one line (drivers add SQL)
            await self._record(migration, direction, Status.FAILED, error)
            raise MigrationFailed(
                f"migration {migration.scope} {migration.version} ({migration.name}) failed "
                f"going {direction.value}: {error}",
                hint="fix it and run the migrations again; the steps before it are kept",
            ) from exc
        await self._record(migration, direction, Status.SUCCEEDED)

    async def _record(
        self, migration: Migration, direction: Direction, status: Status, error: str | None = None
    ) -> None:
        await self.wanderer.record(MigrationRun(
            id=new_id(), version=migration.version,
            scope=migration.scope, name=migration.name, direction=direction, status=status,
            created_at=datetime.now(UTC), error=error, checksum=migration.checksum, actor=self.owner,
        ))

    async def _acquire(self, scope: str) -> Lease | None:
        if self.supervisor is None:
            return None
        key = f"migrations:{scope}"
        deadline = time.monotonic() + self.wait
        while True:
            lease = await self.supervisor.acquire(key, owner=self.owner, ttl=self.lease_ttl)
            if lease is not None:
                return lease
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        holder = await self._holder(key)
        raise MigrationFailed(
            f"{scope} is being migrated by {holder or 'another node'}",
            hint="wait for it to finish, then run the migrations again (or pass --wait SECONDS)",
        )

    async def _holder(self, key: str) -> str | None:
        """Who holds ``key``, if the supervisor can tell (an optional ``holder(key)`` method)."""
        holder = getattr(self.supervisor, "holder", None)
        if holder is None:
            return None
        try:
            lease = await holder(key)
        except Exception:  # noqa: BLE001 - only for the message
            return None
        return lease.owner if lease is not None else None

    async def _renew(self, scope: str, lease: Lease | None) -> Lease | None:
        if lease is None or self.supervisor is None:
            return lease
        renewed = await self.supervisor.renew(lease, ttl=self.lease_ttl)
        if renewed is None:
            raise MigrationFailed(
                f"lost the migration lease of {scope} (it expired and another node took it)",
                hint="raise the lease time or check the node's clock, then run the migrations again",
            )
        return renewed


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield
