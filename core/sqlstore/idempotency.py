"""Idempotency keys: one stored event per ``(source, key)`` within the key's window.

The primary key of ``idempotency_keys`` deduplicates, so concurrent writers in any number of
processes store one event per key. A commit of the group writer claims the keys of all its
events at once, before inserting them: one ``INSERT … ON CONFLICT`` for every key of the
batch (a key whose window has ended is taken over), then, only if some key was not won, one
``SELECT`` of the holders. The events whose key was taken are dropped from the batch with
their jobs and answered as :class:`~hookspecs.Duplicate`. A caller with a duplicate whose
fingerprint differs has none of its events stored (the key was reused for another request).

Keys are claimed in key order, so two transactions waiting on each other's keys cannot
deadlock. The work runs on a sync connection: the SQLite writer thread's, or the async
engine's through ``run_sync``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from core.sqlstore.claims import chunked
from core.sqlstore.schema import NAME, idempotency_keys, utc_text
from core.sqlstore.writer import Row, Work, WriteSet
from hookspecs import Duplicate, Event

#: ``INSERT … ON CONFLICT`` constructs by dialect name (the same API on both).
UPSERT_DIALECTS = {"sqlite": sqlite, "postgresql": postgresql}
KeyOf = tuple[str, str]


def key_row(event: Event, now: datetime) -> Row | None:
    """The ``idempotency_keys`` row claiming ``event``'s key, if it has one."""
    key = event.idempotency
    if key is None:
        return None
    return {
        "source": event.source, "key": key.key, "fingerprint": key.fingerprint, "event_id": event.id,
        "created_at": now, "expires_at": key.expires_at,
    }


@functools.lru_cache(maxsize=8)
def _upsert(dialect: str) -> Any:
    """Insert keys, taking over those whose window ended; returns the keys it wrote."""
    module = UPSERT_DIALECTS.get(dialect)
    if module is None:
        raise NotImplementedError(f"idempotency keys need INSERT … ON CONFLICT, not known for {dialect!r}")
    statement = module.insert(idempotency_keys)
    taken_over = {name: statement.excluded[name] for name in _TAKEN_OVER}
    return statement.on_conflict_do_update(
        index_elements=["source", "key"], set_=taken_over,
        where=idempotency_keys.c.expires_at <= statement.excluded.created_at,
    ).returning(idempotency_keys.c.source, idempotency_keys.c.key)


_TAKEN_OVER = ("fingerprint", "event_id", "created_at", "expires_at")
#: :func:`_upsert` as SQLite driver SQL with plain tuples, without ``RETURNING``: the count of
#: rows written says whether every key was won, and SQLAlchemy's per-value processing would be
#: most of the cost of a batch (as for the other tables, :mod:`core.builtin.sqlite.driver_sql`).
_SQLITE_UPSERT = (
    "INSERT INTO idempotency_keys (source, key, fingerprint, event_id, created_at, expires_at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source, key) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _TAKEN_OVER)
    + " WHERE idempotency_keys.expires_at <= excluded.created_at"
)


def _first(rows: WriteSet) -> tuple[dict[KeyOf, Row], list[KeyOf]]:
    """The first row of each key (a later one of the same key is a duplicate), and the keys in order."""
    first: dict[KeyOf, Row] = {}
    for row in rows.keys:
        first.setdefault((row["source"], row["key"]), row)
    return first, sorted(first)


def sqlite_params(rows: WriteSet) -> list[tuple[Any, ...]]:
    """The parameters of :data:`_SQLITE_UPSERT` for ``rows``' keys, in claim order (built by
    the SQLite store in the event loop, so its writer thread holds the GIL less)."""
    first, ordered = _first(rows)
    texts: dict[datetime, str] = {}  # the events of a call share their times

    def text_of(moment: datetime) -> str:
        found = texts.get(moment)
        if found is None:
            found = texts[moment] = utc_text(moment)
        return found

    return [(r["source"], r["key"], r["fingerprint"], r["event_id"], text_of(r["created_at"]),
             text_of(r["expires_at"])) for r in (first[k] for k in ordered)]


def _won_all(conn: Connection, rows: WriteSet, ordered: list[Row], params: list[tuple[Any, ...]] | None) -> bool:
    """Insert (or take over) the keys of ``ordered``; did every one of them win its key?"""
    if conn.dialect.name == "sqlite":
        params = sqlite_params(rows) if params is None else params
        return int(conn.exec_driver_sql(_SQLITE_UPSERT, params).rowcount) == len(ordered)
    return len(conn.execute(_upsert(conn.dialect.name), ordered).all()) == len(ordered)


def _holders(conn: Connection, keys: Sequence[KeyOf]) -> dict[KeyOf, tuple[str, str]]:
    """``(event_id, fingerprint)`` of the stored holder of each of ``keys``."""
    found: dict[KeyOf, tuple[str, str]] = {}
    columns = idempotency_keys.c
    for chunk in chunked(keys, 500):
        query = select(columns.source, columns.key, columns.event_id, columns.fingerprint).where(
            tuple_(columns.source, columns.key).in_(list(chunk)))
        for source, key, event_id, fingerprint in conn.execute(query):
            found[(source, key)] = (event_id, fingerprint)
    return found


def claim(conn: Connection, batch: Sequence[Work], rows: WriteSet,
          params: list[tuple[Any, ...]] | None = None) -> dict[str, Duplicate]:
    """Claim the keys of ``rows`` (the batch merged) and drop from ``rows`` what must not be
    stored; return the duplicates by event id (empty: every event is new). ``params``: the
    :func:`sqlite_params` of ``rows``, if built already."""
    first, ordered = _first(rows)
    if _won_all(conn, rows, [first[k] for k in ordered], params) and len(first) == len(rows.keys):
        return {}
    holders = _holders(conn, ordered)
    duplicates: dict[str, Duplicate] = {}
    for row in rows.keys:
        original, fingerprint = holders[(row["source"], row["key"])]
        if original != row["event_id"]:
            duplicates[row["event_id"]] = Duplicate(
                row["event_id"], original, row["key"], same=fingerprint == row["fingerprint"])
    refused = [work for work in batch if isinstance(work, WriteSet)
               and any(not duplicates[r["event_id"]].same for r in work.keys if r["event_id"] in duplicates)]
    dropped = set(duplicates)
    for work in refused:  # none of its events is stored: free the keys it claimed
        ids = {row["id"] for row in work.events}
        dropped |= ids
        mine = [(r["source"], r["key"]) for r in work.keys if r["event_id"] not in duplicates]
        if mine:
            conn.execute(delete(idempotency_keys).where(
                tuple_(idempotency_keys.c.source, idempotency_keys.c.key).in_(mine),
                idempotency_keys.c.event_id.in_(list(ids))))
    _drop(rows, dropped)
    return duplicates


async def claim_async(conn: AsyncConnection, batch: Sequence[Work], rows: WriteSet) -> dict[str, Duplicate]:
    """:func:`claim` on an async connection."""
    return await conn.run_sync(lambda sync: claim(sync, batch, rows))


def _drop(rows: WriteSet, event_ids: set[str]) -> None:
    """Remove the events ``event_ids`` and their jobs, transitions and states from ``rows``."""
    job_ids = {job["id"] for job in rows.jobs if job["event_id"] in event_ids}
    rows.events = [row for row in rows.events if row["id"] not in event_ids]
    rows.jobs = [row for row in rows.jobs if row["event_id"] not in event_ids]
    rows.transitions = [row for row in rows.transitions if row["event_id"] not in event_ids]
    rows.states = [row for row in rows.states if row["job_ref"] not in job_ids]


def duplicates_of(rows: WriteSet, duplicates: Mapping[str, Duplicate]) -> list[Duplicate]:
    """What one caller's row insert returns: the duplicates among its events."""
    return [duplicates[r["event_id"]] for r in rows.keys if r["event_id"] in duplicates] if duplicates else []


async def expire(conn: AsyncConnection, now: datetime) -> int:
    """Delete the keys whose window ended before ``now``; return how many."""
    result = await conn.execute(delete(idempotency_keys).where(idempotency_keys.c.expires_at <= now))
    return int(result.rowcount)


async def add_keys(conn: AsyncConnection) -> None:
    """Store schema 1 → 2: the ``idempotency_keys`` table and the key of each job."""
    await conn.run_sync(lambda sync: idempotency_keys.create(sync, checkfirst=True))
    column = NAME.compile(dialect=conn.dialect)
    await conn.execute(text(f"ALTER TABLE jobs ADD COLUMN idempotency_key {column}"))
