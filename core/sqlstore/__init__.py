"""The shared SQL store: the :class:`~hookspecs.Store` protocol on SQLAlchemy Core (async).

:class:`SQLStore` holds everything that is the same on every SQL database: the tables
(:mod:`~core.sqlstore.schema`), the schema version (:mod:`~core.sqlstore.versioning`), group
commit through one writer task (:mod:`~core.sqlstore.writer`), claims and lease recovery
(:mod:`~core.sqlstore.claims`), queries (:mod:`~core.sqlstore.reads`) and purge / rebuild
(:mod:`~core.sqlstore.upkeep`). :class:`~core.builtin.sqlite.store.SQLiteStore` is the built-in
dialect; another dialect (the PostgreSQL plugin) subclasses :class:`SQLStore` and overrides
only what differs:

``create_engine()``
    Build the ``AsyncEngine``: driver, pool, connect-time settings (SQLite: pragmas).
``prepare()``
    Run once before the schema is ensured (SQLite: create the file's directory).
``begin_write(conn)``
    Start the writer's transaction (SQLite: ``BEGIN IMMEDIATE``; default ``conn.begin()``).
``lock_claimed(query)``
    Lock the rows a claim or a recovery selects (PostgreSQL:
    ``query.with_for_update(skip_locked=True, of=job_state)``; default unchanged, since
    SQLite's write transaction already excludes every other writer).
``insert_rows(conn, table, rows)``
    Insert many rows at once (default: one executemany ``INSERT``; PostgreSQL may COPY).
    Rows of ``transitions`` / ``job_state`` name their job by ``job_seq`` or, from
    ``insert_queue`` / ``add_jobs`` / ``add_transitions``, by id as ``job_ref``.
``update_states(conn, updates)``
    Make transitions their jobs' current state (default: one executemany ``UPDATE``);
    returns the rows changed, or -1 when the driver cannot count them.
``is_unavailable(exc)``
    Tell "database unreachable or locked too long" (raised as
    :class:`~hookspecs.StoreUnavailable`) from bad data and bugs (raised as they are).
``claim_work(queries, claim, now)``
    The writer's work for a claim (default: a task on the async connection; SQLite: a
    :class:`~core.sqlstore.writer.SyncTask` that its writer thread runs with the batch).
``writer_concurrency``
    Writer transactions in flight at once (default 1; a server database may overlap them).
``schema_steps`` / ``component``
    Upgrade steps of the tables from one schema version to the next.
``extra_options_hint()``
    Name the subclass's own options in the unknown-option error.

The constructor takes ``url`` and the options ``commit_delay_ms``, ``max_batch`` and
``purge_batch``; a subclass adds its own keyword options and passes the rest on.
``docs/store.md`` explains the design.
"""

from __future__ import annotations

from core.sqlstore.store import ASYNC_DRIVERS, SQLStore, async_url
from core.sqlstore.writer import GroupWriter, WriterStats, WriteSet

__all__ = ["ASYNC_DRIVERS", "GroupWriter", "SQLStore", "WriteSet", "WriterStats", "async_url"]
