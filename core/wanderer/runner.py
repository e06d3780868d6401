"""The migration runner: apply pending migrations, roll back to a version, record every run.

Given a :class:`~hookspecs.Wanderer` (the history) and the :class:`~hookspecs.Migration` objects
plugins and the app offer, :class:`MigrationRunner` applies what is pending, scope by scope in
version order, and rolls a scope back (``down``, newest first) to a target version. Each run
is recorded as it goes: ``acknowledged``, ``executing``, then ``succeeded`` or ``failed`` with
the error. The first failure stops the runner (the versions before it stay applied) and is
raised as a :class:`MigrationFailed` naming the scope, version and error.

With a :class:`~hookspecs.Supervisor`, each scope is migrated under a lease
(``migrations:<scope>``) so that one node at a time migrates it; the lease is renewed before
every step and a lost lease stops the runner before the next step.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import groupby

from core.errors import CoreError
from hookspecs import Direction, Lease, Migration, MigrationRun, Status, Supervisor, Wanderer, new_id


class MigrationFailed(CoreError):
    """A migration raised, was refused, or could not be run safely."""


class MigrationRunner:
    """Runs migrations against a wanderer's history.

    :param wanderer: where runs are recorded and applied versions read.
    :param migrations: every known migration, of any scopes, in any order.
    :param supervisor: when given, a scope is migrated only while holding its lease.
    :param owner: who holds the lease (a node id); shown to the node that is refused.
    :param lease_ttl: seconds the lease lasts between renewals (one per step).
    """

    def __init__(
        self,
        wanderer: Wanderer,
        migrations: Sequence[Migration],
        *,
        supervisor: Supervisor | None = None,
        owner: str = "migrations",
        lease_ttl: float = 300.0,
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
        self.owner = owner
        self.lease_ttl = lease_ttl
        ordered = sorted(seen.values(), key=lambda m: (m.scope, m.version))
        self._by_scope = {scope: list(group) for scope, group in groupby(ordered, key=lambda m: m.scope)}

    @property
    def scopes(self) -> list[str]:
        """The scopes that have migrations, sorted."""
        return list(self._by_scope)

    async def pending(self, scope: str | None = None) -> list[Migration]:
        """Migrations not applied yet, by scope then version."""
        out: list[Migration] = []
        for name in self._selected(scope):
            applied = set(await self.wanderer.applied(name))
            out += [m for m in self._by_scope.get(name, []) if m.version not in applied]
        return out

    async def up(self, scope: str | None = None) -> list[Migration]:
        """Apply every pending migration (of one scope or all); return those applied."""
        done: list[Migration] = []
        for name in self._selected(scope):
            steps = await self.pending(name)
            if steps:
                done += await self._run(name, steps, Direction.UP)
        return done

    async def down(self, scope: str, *, to: str | None = None) -> list[Migration]:
        """Roll ``scope`` back, newest first, until only versions ``<= to`` are applied
        (``to=None``: all of them); return those rolled back."""
        known = {m.version: m for m in self._by_scope.get(scope, [])}
        versions = [v for v in await self.wanderer.applied(scope) if to is None or v > to]
        missing = [v for v in versions if v not in known]
        if missing:
            raise MigrationFailed(
                f"cannot roll back {scope}: version(s) {', '.join(missing)} are applied but no "
                "installed plugin offers them",
                hint="install the release that has these migrations, or pick a later target version",
            )
        steps = [known[v] for v in sorted(versions, reverse=True)]
        return await self._run(scope, steps, Direction.DOWN) if steps else []

    def _selected(self, scope: str | None) -> list[str]:
        return self.scopes if scope is None else [scope]

    async def _run(self, scope: str, steps: list[Migration], direction: Direction) -> list[Migration]:
        lease = await self._acquire(scope)
        try:
            done: list[Migration] = []
            for migration in steps:
                lease = await self._renew(scope, lease)
                await self._step(migration, direction)
                done.append(migration)
            return done
        finally:
            if lease is not None and self.supervisor is not None:
                await self.supervisor.release(lease)

    async def _step(self, migration: Migration, direction: Direction) -> None:
        await self._record(migration, direction, Status.ACKNOWLEDGED)
        await self._record(migration, direction, Status.EXECUTING)
        try:
            await (migration.up if direction is Direction.UP else migration.down)()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
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
            created_at=datetime.now(UTC), error=error,
        ))

    async def _acquire(self, scope: str) -> Lease | None:
        if self.supervisor is None:
            return None
        lease = await self.supervisor.acquire(f"migrations:{scope}", owner=self.owner, ttl=self.lease_ttl)
        if lease is None:
            raise MigrationFailed(
                f"{scope} is being migrated by another node",
                hint="wait for it to finish, then run the migrations again",
            )
        return lease

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
