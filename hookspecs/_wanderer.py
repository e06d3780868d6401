"""The wanderer: versioned migrations (up and down) of every scope, and which have run.

A scope is what owns migrations, written as in Blacksmith: ``source:<s>``,
``source/trigger:<s>/<t>``, ``destination:<d>``, ``destination/action:<d>/<a>`` (short forms
``s:``, ``s/t:``, ``d:``, ``d/a:``) and ``store`` (the store's database). The wanderer records
every run and its transitions; the migration logic belongs to the scope's owner (a trigger or an
action without a ``migrate`` of its own inherits its source's or destination's).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from hookspecs._markers import hookspec
from hookspecs._registration import AdapterRegistration
from hookspecs._store import Status


class Direction(StrEnum):
    """Which way a migration runs."""

    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Migration:
    """One versioned step of a scope; versions sort as strings (``"20261122093000"``).

    ``checksum`` (of a migration file's text) lets the runner refuse a migration changed after
    it ran until it is acknowledged again; ``None`` for code, which is not checked.
    """

    version: str
    scope: str
    name: str
    up: Callable[[], Awaitable[None]]
    down: Callable[[], Awaitable[None]]
    checksum: str | None = None


@dataclass(frozen=True, slots=True)
class MigrationScript:
    """One direction of a migration file (``migrations/<scope>/<version>.<name>.up.sql``), as
    handed to its owner's ``migrate(toolkit, script)``."""

    version: str
    scope: str
    name: str
    direction: Direction
    path: str
    text: str


@dataclass(frozen=True, slots=True)
class MigrationRun:
    """One transition of one migration run (statuses reuse the job statuses)."""

    id: str
    version: str
    scope: str
    name: str
    direction: Direction
    status: Status
    created_at: datetime
    error: str | None = None
    #: The checksum of the migration's file when it ran (``None`` for code).
    checksum: str | None = None
    #: Who ran it: ``user@host (pid N)``.
    actor: str | None = None


@runtime_checkable
class Wanderer(Protocol):
    """Keeps the history of migration runs, per scope."""

    async def open(self) -> None:
        """Connect and create its own tables."""

    async def close(self) -> None:
        """Disconnect."""

    async def record(self, run: MigrationRun) -> None:
        """Append one transition of a migration run."""

    async def history(self, scope: str | None = None) -> list[MigrationRun]:
        """Every recorded transition, oldest first, of one scope or all."""

    async def applied(self, scope: str) -> list[str]:
        """Versions whose latest transition, ``acknowledged`` marks aside, is a succeeded ``up``,
        in version order (an ``acknowledged`` mark opens a run or accepts a changed file: it
        changes nothing by itself)."""


class WandererSpec:
    """Hooks that register wanderer adapters and migrations."""

    @hookspec
    def core_register_wanderers(self) -> list[AdapterRegistration[Wanderer]]:
        """Offer wanderer adapters.

        **When called:** once, when the host builds its adapter registry.

        :return: a list of :class:`~hookspecs.AdapterRegistration` whose factories build
            :class:`Wanderer` objects.

        **Example**::

            @hookimpl
            def core_register_wanderers():
                def make(url, options):
                    from my_plugin.history import MyWanderer
                    return MyWanderer(url)
                return [AdapterRegistration(name="mydb", schemes=("mydb",), factory=make)]
        """
        raise NotImplementedError  # declared here, implemented by plugins

    @hookspec
    def core_register_migrations(self) -> list[Migration]:
        """Offer migrations of the plugin's own scopes (its adapters, sources, destinations).

        **When called:** once when the host builds the pipeline: by every ``core migrate``
        command (with the migrations of sources, triggers, destinations and actions and the
        ``migrations/`` directory) and by ``core start``, which reports pending migrations.
        Every item must be a :class:`Migration`, and a scope's version may be offered once
        (start-up stops with an error naming both plugins otherwise).

        :return: the :class:`Migration` objects; the wanderer orders them by version per scope.

        **Example**::

            @hookimpl
            def core_register_migrations():
                async def up(): ...
                async def down(): ...
                return [Migration("20261122093000", "destination:warehouse", "create orders", up, down)]
        """
        raise NotImplementedError  # declared here, implemented by plugins
