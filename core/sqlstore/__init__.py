"""The SQL store base, part of the adapter toolkit: the :class:`~hookspecs.Store` and
:class:`~hookspecs.Wanderer` protocols on SQLAlchemy Core (async), dialect-neutral.

A plugin imports every name below from ``core.sqlstore`` itself (its submodules are private
to the engine). :class:`SQLStore` holds everything that is the same on every SQL database:
the tables (:data:`events`, :data:`jobs`, :data:`transitions`, :data:`job_state`,
:data:`idempotency_keys`), their schema version, group commit through one writer task (which
claims the events' idempotency keys in the same transaction), claims and lease recovery,
queries and purge / rebuild. :class:`SQLWanderer` keeps the history of migration runs the same way. Both
are :class:`SQLDatabase` subclasses; a dialect (the built-in SQLite one, the PostgreSQL
plugin) subclasses them and overrides only what differs.

Hooks of both (:class:`SQLDatabase`):

``create_engine()``
    Build the ``AsyncEngine``: driver, pool, connect-time settings (SQLite: pragmas).
``prepare()``
    Run once before the engine is built (SQLite: create the file's directory).
``begin_write(conn)``
    Start a write transaction (SQLite: ``BEGIN IMMEDIATE``; default ``conn.begin()``).
``is_unavailable(exc)``
    Tell "database unreachable or locked too long" (raised as
    :class:`~hookspecs.StoreUnavailable`) from bad data and bugs (raised as they are).
``option_names()``
    Name the subclass's own options in the unknown-option error (``[*super().option_names(), …]``).
``schema_steps``
    Upgrade steps of the component's tables from one schema version to the next.

Hooks of the store (:class:`SQLStore`):

``lock_claimed(query)``
    Lock the rows a claim or a recovery selects (PostgreSQL:
    ``query.with_for_update(skip_locked=True, of=job_state)``; default unchanged, since
    SQLite's write transaction already excludes every other writer).
``insert_rows(conn, table, rows)``
    Insert many rows at once (default: one executemany ``INSERT``; PostgreSQL may COPY).
    Rows of ``transitions`` / ``job_state`` name their job by ``job_seq`` or, from
    ``insert_queue`` / ``add_jobs`` / ``add_transitions``, by id as ``job_ref``.
``update_states(conn, updates)``
    Make transitions their jobs' current state (default: one executemany ``UPDATE``, its
    bound parameters named :data:`UPDATE_PREFIX` + column); returns the rows changed, or -1
    when the driver cannot count them.
``lock_action(conn, destination, action)``
    Serialize until the commit the claims of one action that count its executing jobs (a
    concurrency limit; PostgreSQL: a transaction advisory lock; default nothing, as SQLite's
    write transaction already excludes every other writer).
``claim_work(queries, claim, now, concurrency)``
    The writer's work for a claim (default: a task on the async connection; SQLite: a
    :class:`SyncTask` that its writer thread runs with the batch).
``writer_concurrency``
    Writer transactions in flight at once (default 1; a server database may overlap them).

Protected members a dialect uses: ``engine`` (the ``AsyncEngine`` while open),
``connection()`` (a connection whose unreachable-database errors are ``StoreUnavailable``)
and ``writing()`` (the same in a write transaction; the caller commits). The store's
constructor takes ``url`` and the options ``commit_delay_ms``, ``max_batch`` and
``purge_batch``; a subclass adds its own keyword options and passes the rest on.
SQL scripts (migrations, operations): :func:`split_statements`, :func:`execute_script` (on a
connection, values bound as parameters), :func:`run_script` (one transaction on a URL or
engine) and :data:`TRANSACTIONAL_DDL` (which dialects can roll DDL back).
A dialect that runs the claim of due jobs on its driver with plain rows (faster than
SQLAlchemy's per-value processing) gets the base's ``SELECT``, compiled once for its dialect,
from :func:`compiled_due` (a :class:`CompiledClaim`: the text and its parameters in order);
likewise the guard's read of moved jobs (:func:`compiled_current`) and the read of events by
id (:func:`compiled_events_by_id`), each a :class:`Compiled`, the ids bound as one array.
``docs/plugin-helpers.md`` documents this API with an example; ``docs/store.md`` explains the
design.
"""

from __future__ import annotations

from core.sqlstore.claims import Compiled, CompiledClaim, compiled_due
from core.sqlstore.database import ASYNC_DRIVERS, SQLDatabase, async_url
from core.sqlstore.moves import compiled_current
from core.sqlstore.reads import compiled_events_by_id
from core.sqlstore.rows import UPDATE_PREFIX
from core.sqlstore.schema import (
    NO_DUE_TIME,
    SCHEMA_VERSION,
    JSONText,
    UTCDateTime,
    events,
    idempotency_keys,
    job_state,
    jobs,
    metadata,
    transitions,
)
from core.sqlstore.scripts import TRANSACTIONAL_DDL, execute_script, run_script, split_statements, transactional_ddl
from core.sqlstore.store import SQLStore
from core.sqlstore.versioning import Step
from core.sqlstore.wanderer import SQLWanderer
from core.sqlstore.writer import GroupWriter, SyncTask, Work, WriterStats, WriteSet

__all__ = [
    "ASYNC_DRIVERS",
    "NO_DUE_TIME",
    "SCHEMA_VERSION",
    "TRANSACTIONAL_DDL",
    "UPDATE_PREFIX",
    "Compiled",
    "CompiledClaim",
    "GroupWriter",
    "JSONText",
    "SQLDatabase",
    "SQLStore",
    "SQLWanderer",
    "Step",
    "SyncTask",
    "UTCDateTime",
    "Work",
    "WriteSet",
    "WriterStats",
    "async_url",
    "compiled_current",
    "compiled_due",
    "compiled_events_by_id",
    "events",
    "execute_script",
    "idempotency_keys",
    "job_state",
    "jobs",
    "metadata",
    "run_script",
    "split_statements",
    "transactional_ddl",
    "transitions",
]
