"""The SQLite writer's statements as driver SQL with plain tuples: fast multi-row writes.

SQLAlchemy's per-value type processing would be the largest cost of a batch of inserts, so the
store's rows (dicts built by :mod:`core.sqlstore.rows`) are turned here into ``?`` parameter
tuples in one pass, with values converted as :class:`~core.sqlstore.schema.UTCDateTime` and
:class:`~core.sqlstore.schema.JSONText` store them on SQLite. Both the async path
(:class:`~core.builtin.sqlite.store.SQLiteStore`) and the writer thread run these statements.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Table

from core.sqlstore.rows import UPDATE_PREFIX
from core.sqlstore.schema import JSONText, UTCDateTime, utc_text

#: Turns one row dict into the tuple of an ``INSERT``'s parameters.
RowToTuple = Callable[[dict[str, Any]], tuple[Any, ...]]
_INSERTS: dict[tuple[str, bool], tuple[str, RowToTuple]] = {}


#: Texts of the datetimes converted lately, by value: the rows of a batch repeat a few (each
#: request's receive and ingest times in its event, job and transition rows; a claim's ``now``
#: and lease expiry; ``NO_DUE_TIME``). Equal datetimes are the same instant, so they have the
#: same text; the dict is emptied when full, and writer threads of several stores may share it.
_texts: dict[datetime, str] = {}
_MAX_TEXTS = 4096


def sql_time(value: datetime | None) -> str | None:
    """A datetime as :class:`~core.sqlstore.schema.UTCDateTime` stores it on SQLite."""
    if value is None:
        return None
    text = _texts.get(value)
    if text is None:
        if len(_texts) >= _MAX_TEXTS:
            _texts.clear()
        text = _texts[value] = utc_text(value)
    return text


def sql_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def insert_sql(table: Table, *, by_ref: bool) -> tuple[str, RowToTuple]:
    """``INSERT`` text with ``?`` placeholders, and a function from a row dict to its parameters.

    The same statement as the base store's (``by_ref``: ``job_seq`` looked up from
    ``job_ref``), with values converted in one pass instead of SQLAlchemy's per-value type
    processing. The function is generated once per table, one expression per column, because
    it runs for every row of every batch.
    """
    key = (table.name, by_ref)
    if key not in _INSERTS:
        names = [c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)]
        resolve = by_ref and "job_seq" in names
        cells = []
        for name in names:
            kind = type(table.c[name].type)
            cell = f"row[{('job_ref' if resolve and name == 'job_seq' else name)!r}]"
            cells.append(f"sql_time({cell})" if kind is UTCDateTime else f"sql_json({cell})" if kind is JSONText
                         else cell)
        to_tuple = eval(f"lambda row: ({', '.join(cells)},)", {"sql_time": sql_time, "sql_json": sql_json})
        values = ", ".join("(SELECT seq FROM jobs WHERE id = ?)" if resolve and n == "job_seq" else "?"
                           for n in names)
        _INSERTS[key] = (f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({values})", to_tuple)
    return _INSERTS[key]


def insert_params(table: Table, rows: list[dict[str, Any]]) -> tuple[str, list[tuple[Any, ...]]]:
    """The ``INSERT`` of ``rows`` into ``table`` and its parameters (see :func:`insert_sql`)."""
    sql, to_tuple = insert_sql(table, by_ref="job_ref" in rows[0])
    return sql, [to_tuple(row) for row in rows]


def state_update_params(updates: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Parameters of :data:`STATE_UPDATE_SQL` for rows built by :func:`~core.sqlstore.rows.state_update`."""
    status, attempt, due_at, ready_at, ref = (
        f"{UPDATE_PREFIX}{name}" for name in ("status", "attempt", "due_at", "ready_at", "job_ref")
    )
    return [(u[status], u[attempt], sql_time(u[due_at]), sql_time(u[ready_at]), u[ref]) for u in updates]


#: The state update of :meth:`~core.sqlstore.store.SQLStore.update_states`, as plain SQL.
STATE_UPDATE_SQL = (
    "UPDATE job_state SET status = ?, attempt = ?, due_at = ?, ready_at = ?, lease_owner = NULL, "
    "lease_expires_at = NULL WHERE job_seq = (SELECT seq FROM jobs WHERE id = ?)"
)
#: The same update, naming the job by ``job_seq`` (known from the guard's read).
STATE_UPDATE_BY_SEQ_SQL = (
    "UPDATE job_state SET status = ?, attempt = ?, due_at = ?, ready_at = ?, lease_owner = NULL, "
    "lease_expires_at = NULL WHERE job_seq = ?"
)
#: The current status, attempt and ``seq`` of the jobs named in ``IN ({})`` (``?`` each), as
#: the guard of :mod:`core.sqlstore.moves` reads it.
CURRENT_SQL = ("SELECT j.id, s.status, s.attempt, j.seq FROM jobs AS j JOIN job_state AS s ON s.job_seq = j.seq "
               "WHERE j.id IN ({})")
