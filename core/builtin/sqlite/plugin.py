"""Built-in plugin ``sqlite``: the embedded store and wanderer on SQLite (WAL mode)."""

from __future__ import annotations

from typing import Any

from hookspecs import AdapterRegistration, Store, Wanderer, hookimpl


def _store(url: str, options: dict[str, Any]) -> Store:
    from core.builtin.sqlite.store import SQLiteStore

    return SQLiteStore(url, **options)


def _wanderer(url: str, options: dict[str, Any]) -> Wanderer:
    from core.builtin.sqlite.wanderer import SQLiteWanderer

    return SQLiteWanderer(url, **options)


@hookimpl
def core_register_stores() -> list[AdapterRegistration[Store]]:
    return [AdapterRegistration(
        name="sqlite", schemes=("sqlite",), factory=_store,
        capabilities=frozenset({"purge"}),
        description="embedded store on a SQLite file (WAL, group commit)",
    )]


@hookimpl
def core_register_wanderers() -> list[AdapterRegistration[Wanderer]]:
    return [AdapterRegistration(
        name="sqlite", schemes=("sqlite",), factory=_wanderer,
        description="migration history in a SQLite file",
    )]
