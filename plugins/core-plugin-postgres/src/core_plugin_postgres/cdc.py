"""A CDC source on PostgreSQL: an event per INSERT / UPDATE / DELETE of chosen tables.

Row triggers (PL/pgSQL) append each change, with the old and new row as JSON, to
``core_cdc_changes`` and ``pg_notify('core_cdc', consumer)`` as a wake-up (as in the
pipelines-orchestrator seed, with the change table in between so nothing depends on a
notification arriving). The listener reads its consumer's changes in id order, in batches;
for each batch it calls ``emit`` (which returns once the events are stored) and then deletes
those rows in the same transaction: a crash in between re-emits the batch (at least once), a
restart resumes where the last committed batch ended, nothing is missed. A transaction-level
advisory lock per consumer makes a second listener wait instead of emitting the same rows, so
running two is safe; the gateway's supervisor lease normally keeps one running.

The change table is a queue (rows are deleted once emitted), vacuumed eagerly.

Use :func:`postgres_cdc_source` for a ready :class:`~hookspecs.Source`, or put a
:class:`PostgresCdcTrigger` in your own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import asyncpg
from hookspecs import CdcTrigger, Emit, EventDraft, Migration, Source, Toolkit, redacted_url

from core_plugin_postgres._pg import DISCONNECTED, SCHEMA_LOCK, connect

CHANNEL = "core_cdc"
OPERATIONS = ("INSERT", "UPDATE", "DELETE")

SCHEMA = """
CREATE TABLE IF NOT EXISTS core_cdc_changes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer    text NOT NULL,
    schema_name text NOT NULL,
    table_name  text NOT NULL,
    operation   text NOT NULL,
    old         jsonb,
    new         jsonb,
    txid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
CREATE INDEX IF NOT EXISTS core_cdc_changes_consumer ON core_cdc_changes (consumer, id);
CREATE OR REPLACE FUNCTION core_cdc_capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO core_cdc_changes (consumer, schema_name, table_name, operation, old, new)
    VALUES (TG_ARGV[0], TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP,
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    PERFORM pg_notify('core_cdc', TG_ARGV[0]);
    RETURN NULL;
END
$$;
"""

READ = """
SELECT id, schema_name, table_name, operation, old::text AS old, new::text AS new,
       txid::text AS txid, created_at
FROM core_cdc_changes WHERE consumer = $1 ORDER BY id LIMIT $2
"""
LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('core_cdc:' || $1))"
CONSUMED = "DELETE FROM core_cdc_changes WHERE id = ANY($1::bigint[])"


def quote(identifier: str) -> str:
    """A (possibly schema-qualified) name as a quoted SQL identifier."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in identifier.split("."))


class PostgresCdcTrigger(CdcTrigger):
    """A ``cdc`` trigger emitting ``<table>.<operation>`` events for changes of ``tables``.

    The event's ``data`` is ``{"schema", "table", "operation", "old", "new"}`` (``old`` is
    ``None`` for an insert, ``new`` for a delete); its ``context`` holds the change id and
    transaction id under ``"cdc"``; ``sent_at`` is when the row changed.

    :param url: the database whose tables are watched (``postgresql://…``).
    :param tables: table names, optionally schema-qualified (``"sales.orders"``).
    :param operations: which of INSERT, UPDATE, DELETE to capture.
    :param consumer: the name of this change stream (default: the trigger's name); two
        triggers on one database need different consumers.
    :param batch_size: changes emitted per ``emit`` call.
    :param poll_interval: longest wait without a notification before looking again.
    :param install: create the change table, function and row triggers on start (needs the
        privileges; otherwise run :meth:`install` once as an administrator).
    """

    def __init__(
        self,
        name: str,
        url: str,
        tables: Sequence[str],
        *,
        operations: Sequence[str] = OPERATIONS,
        consumer: str | None = None,
        batch_size: int = 500,
        poll_interval: float = 5.0,
        install: bool = True,
    ) -> None:
        super().__init__(name, self._listen)
        if not tables:
            raise ValueError(f"CDC trigger {name!r}: name at least one table to watch")
        unknown = sorted({op.upper() for op in operations} - set(OPERATIONS))
        if unknown or not operations:
            raise ValueError(f"CDC trigger {name!r}: operations {list(operations)} must be among {OPERATIONS}")
        self.url = url
        self.tables = tuple(tables)
        self.operations = tuple(op.upper() for op in operations)
        self.consumer = consumer or name
        self.batch_size = int(batch_size)
        self.poll_interval = float(poll_interval)
        self.auto_install = install

    def __repr__(self) -> str:
        return f"PostgresCdcTrigger({self.name!r}, {redacted_url(self.url)!r}, tables={list(self.tables)})"

    def _trigger_name(self) -> str:
        name = f"core_cdc_{self.consumer}"[:63]
        return '"' + name.replace('"', '""') + '"'


    async def install(self, conn: asyncpg.Connection | None = None) -> None:
        """Create the change table and function, and a row trigger on each table."""
        own = conn is None
        conn = conn or await connect(self.url)
        try:
            events = " OR ".join(self.operations)
            async with conn.transaction():
                # Lock the watched tables first, in the order a writer meets them (table,
                # then change table), so a concurrent write cannot deadlock with us.
                await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
                await conn.execute(
                    f"LOCK TABLE {', '.join(quote(t) for t in self.tables)} IN SHARE ROW EXCLUSIVE MODE"
                )
                await conn.execute(SCHEMA)
                for table in self.tables:
                    await conn.execute(
                        f"CREATE OR REPLACE TRIGGER {self._trigger_name()} AFTER {events} ON {quote(table)} "
                        f"FOR EACH ROW EXECUTE FUNCTION core_cdc_capture({_literal(self.consumer)})"
                    )
        finally:
            if own:
                await conn.close()

    async def uninstall(self) -> None:
        """Drop this trigger's row triggers and its pending changes."""
        conn = await connect(self.url)
        try:
            async with conn.transaction():
                for table in self.tables:
                    await conn.execute(f"DROP TRIGGER IF EXISTS {self._trigger_name()} ON {quote(table)}")
                await conn.execute("DELETE FROM core_cdc_changes WHERE consumer = $1", self.consumer)
        finally:
            await conn.close()

    async def _listen(self, toolkit: Toolkit, emit: Emit) -> None:
        """Run until cancelled: drain pending changes, then wait for a notification or a poll."""
        backoff = 0.1
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self._session(toolkit, emit)
                problem = "the listening session ended"
            except DISCONNECTED as exc:
                problem = f"database {redacted_url(self.url)} unreachable ({exc})"
            except Exception as exc:  # noqa: BLE001 - an emit that failed (store down): retry, lose nothing
                problem = str(exc)
            if loop.time() - started > 60:
                backoff = 0.1  # the session had been running: a new outage starts fast again
            toolkit.logger.warning("CDC %s: %s; retrying in %.1fs", self.name, problem, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.poll_interval)

    async def _session(self, toolkit: Toolkit, emit: Emit) -> None:
        wake = asyncio.Event()

        def notified(_conn: Any, _pid: int, _channel: str, consumer: str) -> None:
            if consumer == self.consumer:
                wake.set()

        conn = await connect(self.url)
        try:
            if self.auto_install:
                await self.install(conn)
            await conn.add_listener(CHANNEL, notified)
            toolkit.logger.info("CDC %s: listening to %s", self.name, ", ".join(self.tables))
            while True:
                wake.clear()
                while await self._drain_batch(conn, emit) == self.batch_size:
                    pass
                try:
                    await asyncio.wait_for(wake.wait(), self.poll_interval)
                except TimeoutError:
                    pass
        finally:
            conn.terminate()

    async def _drain_batch(self, conn: asyncpg.Connection, emit: Emit) -> int:
        """Emit one batch and delete it in one transaction; return how many rows it had.

        Once ``emit`` has returned the events are stored, so marking the rows consumed runs to
        its commit even if the listener is being stopped (a clean stop re-emits nothing); only
        a crash between the two can re-emit the batch.
        """
        transaction = conn.transaction()
        await transaction.start()
        try:
            if not await conn.fetchval(LOCK, self.consumer):
                await transaction.rollback()
                return 0  # another listener is emitting this stream; look again later
            rows = await conn.fetch(READ, self.consumer, self.batch_size)
            if rows:
                await emit([self._draft(row) for row in rows])
        except BaseException:
            await transaction.rollback()
            raise
        finishing = asyncio.ensure_future(self._consume(conn, transaction, [row["id"] for row in rows]))
        try:
            await asyncio.shield(finishing)
        except asyncio.CancelledError:
            await finishing  # commit what was emitted, then honour the stop
            raise
        return len(rows)

    @staticmethod
    async def _consume(conn: asyncpg.Connection, transaction: Any, ids: list[int]) -> None:
        """Delete the emitted rows and commit the batch's transaction."""
        try:
            if ids:
                await conn.execute(CONSUMED, ids)
        except BaseException:
            await transaction.rollback()
            raise
        await transaction.commit()

    def _draft(self, row: Any) -> EventDraft:
        table = row["table_name"] if row["schema_name"] == "public" else f"{row['schema_name']}.{row['table_name']}"
        operation = row["operation"].lower()
        return EventDraft(
            name=f"{table}.{operation}",
            data={
                "schema": row["schema_name"],
                "table": row["table_name"],
                "operation": operation,
                "old": None if row["old"] is None else json.loads(row["old"]),
                "new": None if row["new"] is None else json.loads(row["new"]),
            },
            context={"cdc": {"change_id": row["id"], "txid": row["txid"], "consumer": self.consumer}},
            sent_at=row["created_at"],
        )


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def postgres_cdc_source(
    name: str,
    url: str,
    tables: Sequence[str],
    *,
    trigger: str = "changes",
    migrations: Sequence[Migration] = (),
    **options: Any,
) -> Source:
    """A :class:`~hookspecs.Source` named ``name`` with one :class:`PostgresCdcTrigger`.

    ``options`` go to the trigger; its consumer defaults to ``"<name>.<trigger>"``.
    """
    options.setdefault("consumer", f"{name}.{trigger}")
    return Source(name, [PostgresCdcTrigger(trigger, url, tables, **options)], migrations=migrations)
