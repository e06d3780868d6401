"""Helpers of the SQL store tests: a store on a temporary SQLite file, raw reads of its tables."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.builtin.sqlite.store import SQLiteStore
from core.sqlstore.schema import SCHEMA_VERSION
from core.testing.data import advance, make_event, make_transition
from hookspecs import Event, Job, Queue, Status


def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'core.db'}"


def rows(path: Path, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    """Read the database file directly (another connection, as another process would)."""
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, tuple(params)).fetchall()


def db_path(store: SQLiteStore) -> Path:
    assert store.path is not None
    return store.path


async def insert(store: SQLiteStore, count: int, *, destination: str = "crm", action: str = "identify",
                 source: str = "shop", name: str = "order", **fields: Any) -> list[Event]:
    events = [make_event(source=source, name=name, actions=[(destination, action)], **fields)
              for _ in range(count)]
    await store.insert_queue(Queue(events=events))
    return events


async def finish(store: SQLiteStore, jobs: Iterable[Job], status: Status = Status.SUCCEEDED) -> None:
    """Move each job through ``executing`` (unless it is there) to ``status``, in one call."""
    moves = []
    for job in jobs:
        if job.status is not Status.EXECUTING:
            moves.append(make_transition(job, Status.EXECUTING))
            job = advance(replace(job), moves[-1])
        moves.append(make_transition(job, status))
    assert await store.add_transitions(moves) == []


@asynccontextmanager
async def upgraded_from(tmp_path: Path, version: int, *undo: str) -> AsyncIterator[tuple[SQLiteStore, Event]]:
    """A store holding one event, set back to schema ``version`` by the ``undo`` statements (as that
    release left it), then opened again: it must be at :data:`SCHEMA_VERSION`. Yields it and the event."""
    store = SQLiteStore(db_url(tmp_path))
    await store.open()
    [old] = await insert(store, 1)
    await store.close()
    with sqlite3.connect(tmp_path / "state" / "core.db") as conn:
        for statement in undo:
            conn.execute(statement)
        conn.execute("UPDATE schema_versions SET version = ? WHERE component = 'store'", (version,))
    await store.open()
    try:
        assert rows(db_path(store), "SELECT version FROM schema_versions WHERE component = 'store'") == [
            (SCHEMA_VERSION,)]
        yield store, old
    finally:
        await store.close()
