"""``SQLDestination``: a SQL database as a destination, through SQLAlchemy (async).

Its actions load their queue in one transaction per batch: :class:`TableAction` writes job data
into a declared table (an executemany ``INSERT``; ``COPY`` on PostgreSQL from ``copy_threshold``
rows; an upsert by key when the action has one), :class:`TemplateAction` runs a TLT template per
job. The destination is a :class:`~hookspecs.SQLWarehouse`, so ``core run operation|query`` can
use it, and runs the SQL migration files of its scopes (``migrate``) on its own database, in one
transaction where the database allows it (not MariaDB/MySQL DDL, which commits as it goes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core.sqlstore import run_script, transactional_ddl
from hookspecs import (
    Action,
    CoreError,
    Destination,
    Job,
    LoadResult,
    MigrationScript,
    QueryResult,
    Queue,
    RenderedSQL,
    Schedule,
    Then,
    Toolkit,
    redacted_url,
)
from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Integer, MetaData, Numeric, Table, Text, text
from sqlalchemy import Column as SAColumn
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeEngine

from core_plugin_sql._tlt import params_of, render

#: The async driver of each plain scheme.
DRIVERS = {
    "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg",
    "mysql": "mysql+aiomysql", "mariadb": "mariadb+aiomysql", "sqlite": "sqlite+aiosqlite",
}
#: Column types a table may declare.
TYPES: dict[str, type[TypeEngine[Any]]] = {
    "text": Text, "integer": Integer, "bigint": BigInteger, "numeric": Numeric, "float": Float,
    "boolean": Boolean, "timestamp": DateTime, "json": JSON,
}


def engine_url(url: str) -> str:
    """``url`` with its scheme's async driver (``postgresql://`` → ``postgresql+asyncpg://``)."""
    parsed = make_url(url)
    return parsed.set(drivername=DRIVERS.get(parsed.drivername, parsed.drivername)).render_as_string(
        hide_password=False)


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a table an action writes: its name and type (``text``, ``integer``,
    ``bigint``, ``numeric``, ``float``, ``boolean``, ``timestamp``, ``json``)."""

    name: str
    type: str = "text"

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"column {self.name!r}: type {self.type!r} is not one of {', '.join(TYPES)}")


def _value(column: Column, value: Any) -> Any:
    """A JSON value as the column's driver wants it."""
    if value is None:
        return None
    if column.type == "timestamp" and isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if column.type == "numeric" and not isinstance(value, Decimal):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"column {column.name!r}: {value!r} is not a number") from None
    return value


class SQLDestination(Destination):
    """A SQL database, by SQLAlchemy URL (``postgresql://``, ``mariadb://``, ``mysql://``,
    ``sqlite:///``; another dialect by its ``dialect+driver://`` URL).

    :param url: the database; ``None`` reads ``url`` from the destination's options
        (``[options.NAME] url = …``) at ``init``.
    :param pool_size: connections kept open.
    """

    def __init__(self, name: str, actions: Sequence[Action], *, url: str | None = None,
                 schedule: Schedule | None = None, pool_size: int = 5, **kwargs: Any) -> None:
        super().__init__(name, actions, schedule=schedule, **kwargs)
        self.url = url
        self.pool_size = pool_size
        self._engine: AsyncEngine | None = None
        for action in actions:
            if isinstance(action, SQLAction):
                action.destination = self

    def __repr__(self) -> str:
        return f"SQLDestination({self.name!r}, {redacted_url(self.url or '')!r})"

    @property
    def dialect(self) -> Dialect:
        """The database's SQLAlchemy dialect (known before connecting)."""
        if self._engine is not None:
            return self._engine.dialect
        if self.url is None:
            raise CoreError(f"destination {self.name!r} has no url",
                            hint=f"pass url= or set [options.{self.name}] url = \"…\"")
        return make_url(engine_url(self.url)).get_dialect()()

    @property
    def engine(self) -> AsyncEngine:
        """The engine, built on first use (``init`` builds it; ``shutdown`` disposes of it)."""
        if self._engine is None:
            if self.url is None:
                raise CoreError(f"destination {self.name!r} has no url",
                                hint=f"pass url= or set [options.{self.name}] url = \"…\"")
            options: dict[str, Any] = {"pool_pre_ping": True}
            if not self.url.startswith("sqlite"):
                options["pool_size"] = self.pool_size
            self._engine = create_async_engine(engine_url(self.url), **options)
        return self._engine

    async def init(self, toolkit: Toolkit) -> None:
        if self.url is None and toolkit.options.get("url"):
            self.url = str(toolkit.options["url"])
        self.engine  # noqa: B018 - build it now, so a bad URL fails at start-up

    async def shutdown(self, toolkit: Toolkit) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    # -- SQLWarehouse --------------------------------------------------------------------------

    def render(self, template: str, variables: Mapping[str, Any] | None = None, *,
               where: str = "template") -> RenderedSQL:
        return render(template, variables, dialect=self.dialect, where=where)

    def _failed(self, exc: Exception, what: str) -> CoreError:
        first = " ".join((str(exc).strip().splitlines() or [""])[0].split())
        kept = ("nothing of it was kept (one transaction)" if transactional_ddl(self.dialect.name) else
                f"its data changes were rolled back ({self.dialect.name} commits DDL as it goes)")
        return CoreError(f"the {what} failed on destination {self.name!r}: {type(exc).__name__}: {first}",
                         hint=kept if what == "operation" else "check the SQL (--dry-run prints it)")

    async def run_operation(self, sql: RenderedSQL) -> int:
        changed = 0
        unknown = False
        try:
            async with self.engine.begin() as conn:
                for statement in sql.statements:
                    result = await conn.execute(text(statement), params_of(statement, sql.params))
                    if result.rowcount is None or result.rowcount < 0:
                        unknown = True
                    else:
                        changed += result.rowcount
        except CoreError:
            raise
        except Exception as exc:
            raise self._failed(exc, "operation") from exc
        return -1 if unknown else changed

    async def run_query(self, sql: RenderedSQL) -> QueryResult:
        if not sql.statements:
            raise CoreError("the query has no statement")
        try:
            async with self.engine.connect() as conn:
                trans = await conn.begin()
                try:
                    for statement in sql.statements[:-1]:
                        await conn.execute(text(statement), params_of(statement, sql.params))
                    last = sql.statements[-1]
                    result = await conn.execute(text(last), params_of(last, sql.params))
                    if not result.returns_rows:
                        raise CoreError("the last statement of a query returns no rows",
                                        hint="end the file with a SELECT, or use core run operation")
                    columns = list(result.keys())
                    rows = [tuple(row) for row in result.all()]
                finally:
                    await trans.rollback()
        except CoreError:
            raise
        except Exception as exc:
            raise self._failed(exc, "query") from exc
        return QueryResult(columns, rows)

    # -- migrations ----------------------------------------------------------------------------

    async def migrate(self, toolkit: Toolkit, script: MigrationScript) -> None:
        """Run a migration file of this destination's scopes on its database."""
        if self.url is None and toolkit.options.get("url"):
            self.url = str(toolkit.options["url"])
        try:
            await run_script(self.engine, script.text)
        except CoreError:
            raise
        except Exception as exc:
            note = "" if transactional_ddl(self.dialect.name) else (
                f" ({self.dialect.name} commits DDL as it goes: the statements before the failing one stay)")
            first = (str(exc).strip().splitlines() or [""])[0]
            raise CoreError(f"{script.path}: {type(exc).__name__}: {first}{note}") from exc


class SQLAction(Action):
    """Base of the actions of a :class:`SQLDestination` (which sets :attr:`destination`)."""

    destination: SQLDestination | None = None

    def _owner(self) -> SQLDestination:
        if self.destination is None:
            raise CoreError(f"action {self.name!r} is not in a SQLDestination",
                            hint="pass it in the actions of a core_plugin_sql.SQLDestination")
        return self.destination


class TableAction(SQLAction):
    """Writes each job's data (a JSON object) as one row of ``table``.

    :param name: the action's name.
    :param table: the table (``schema.table`` allowed); it must exist (create it with a migration).
    :param columns: the columns written, taken from the job data's keys of the same name.
    :param key: with key columns, a row whose key exists is updated instead (upsert).
    :param copy_threshold: rows from which PostgreSQL loads with ``COPY`` (plain inserts only).
    :param schedule: the action's schedule (default: the destination's).
    """

    def __init__(self, name: str, table: str, columns: Sequence[Column | str], *, key: Sequence[str] = (),
                 copy_threshold: int = 100, schedule: Schedule | None = None) -> None:
        self.name = name  # type: ignore[misc]  # an instance's name, as in TemplateAction
        self.schedule = schedule
        self.columns = [c if isinstance(c, Column) else Column(c) for c in columns]
        names = [c.name for c in self.columns]
        missing = [k for k in key if k not in names]
        if missing:
            raise ValueError(f"action {name!r}: key column(s) {missing} are not among its columns {names}")
        self.key = tuple(key)
        self.copy_threshold = copy_threshold
        schema, _, table_name = table.rpartition(".")
        self.table = Table(table_name, MetaData(), *(SAColumn(c.name, TYPES[c.type]()) for c in self.columns),
                           schema=schema or None)

    def row(self, job: Job) -> dict[str, Any]:
        """The row of one job; :class:`ValueError` says why a job cannot be one."""
        data = job.data
        if not isinstance(data, Mapping):
            raise ValueError(f"job data is a {type(data).__name__}, not a JSON object")
        missing = [k for k in self.key if data.get(k) is None]
        if missing:
            raise ValueError(f"job data has no key column {', '.join(missing)}")
        return {c.name: _value(c, data.get(c.name)) for c in self.columns}

    async def load(self, toolkit: Toolkit, queue: Queue) -> LoadResult:
        rows: list[dict[str, Any]] = []
        ids: list[str] = []
        refused: list[Then] = []
        for job in queue.jobs:
            try:
                rows.append(self.row(job))
                ids.append(job.id)
            except ValueError as exc:
                refused.append(Then(jobs=[job.id], error=str(exc), force_discard=True))
        if rows:
            try:
                await self.write(rows)
            except Exception as exc:  # noqa: BLE001 - the batch failed: retried on the schedule
                return [*refused, Then(jobs=ids, error=f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")]
        return [*refused, Then(jobs=ids)] if ids else refused

    async def write(self, rows: list[dict[str, Any]]) -> None:
        """Write rows in one transaction: upsert, COPY or one executemany INSERT."""
        destination = self._owner()
        dialect = destination.dialect.name
        async with destination.engine.begin() as conn:
            if self.key:
                await conn.execute(_upsert(self.table, self.key, dialect), rows)
            elif dialect == "postgresql" and len(rows) >= self.copy_threshold:
                await self._copy(conn, rows)
            else:
                await conn.execute(self.table.insert(), rows)

    async def _copy(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        names = [c.name for c in self.columns]
        records = [tuple(json.dumps(r[n]) if c.type == "json" and r[n] is not None else r[n]
                         for n, c in zip(names, self.columns, strict=True)) for r in rows]
        await driver.copy_records_to_table(self.table.name, records=records, columns=names,
                                           schema_name=self.table.schema)


def _upsert(table: Table, key: Sequence[str], dialect: str) -> Any:
    others = [c.name for c in table.columns if c.name not in key]
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(table)
        return stmt.on_conflict_do_update(index_elements=list(key), set_={c: stmt.excluded[c] for c in others}) \
            if others else stmt.on_conflict_do_nothing(index_elements=list(key))
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        lite = sqlite_insert(table)
        return lite.on_conflict_do_update(index_elements=list(key), set_={c: lite.excluded[c] for c in others}) \
            if others else lite.on_conflict_do_nothing(index_elements=list(key))
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        my = mysql_insert(table)
        return my.on_duplicate_key_update({c: my.inserted[c] for c in (others or list(key))})
    raise CoreError(f"table {table.name}: upsert by key is not available on {dialect}",
                    hint="drop the key (plain inserts), or use PostgreSQL, MariaDB/MySQL or SQLite")


class TemplateAction(SQLAction):
    """Runs a TLT template for each job, every job of the queue in one transaction.

    The template sees ``data``, ``context`` and ``job`` (``id``, ``event_id``, ``version``);
    every value it outputs is a bound parameter.
    """

    def __init__(self, name: str, template: str, *, schedule: Schedule | None = None) -> None:
        self.name = name  # type: ignore[misc]
        self.schedule = schedule
        self.template = template

    async def load(self, toolkit: Toolkit, queue: Queue) -> LoadResult:
        destination = self._owner()
        ids = [job.id for job in queue.jobs]
        try:
            async with destination.engine.begin() as conn:
                for job in queue.jobs:
                    sql = destination.render(self.template, {
                        "data": job.data, "context": job.context,
                        "job": {"id": job.id, "event_id": job.event_id, "version": job.version},
                    }, where=f"action {self.name!r}")
                    for statement in sql.statements:
                        await conn.execute(text(statement), params_of(statement, sql.params))
        except CoreError as exc:
            return Then(jobs=ids, error=exc.message, force_discard=True)
        except Exception as exc:  # noqa: BLE001 - the batch failed: retried on the schedule
            return Then(jobs=ids, error=f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
        return Then(jobs=ids)
