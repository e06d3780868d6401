"""The SQLite store's writer thread and its WAL checkpointer.

A batch of the group writer that holds only row inserts and :class:`~core.sqlstore.writer.SyncTask`
work (claims) runs in ONE call to a dedicated thread, on a plain pysqlite SQLAlchemy Core
connection: one hop from the event loop per transaction instead of one aiosqlite hop per
statement.

That connection never checkpoints the WAL itself (``wal_autocheckpoint = 0``): an automatic
checkpoint runs inside the commit that crosses the threshold and stalls the writer for its
duration. A second thread runs ``PRAGMA wal_checkpoint(PASSIVE)`` instead, on its own
connection, after every :data:`CHECKPOINT_ROWS` rows written; a passive checkpoint takes no
write lock, so the next batches commit while it copies pages into the database file.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection

from core.builtin.sqlite.connections import sqlite_sync_engine
from core.sqlstore.writer import SyncTask, Work, WriteSet

log = logging.getLogger(__name__)

#: Rows written between two checkpoints (about what SQLite's default of 1,000 pages holds).
CHECKPOINT_ROWS = 10_000
#: An ``INSERT`` (or ``UPDATE``) and the parameters of its rows.
Statement = tuple[str, list[tuple[Any, ...]]]
#: Builds a batch's inserts inside its transaction (after claiming its idempotency keys).
Statements = Callable[[Connection], list[Statement]]


class WriterThread:
    """Runs writer batches on a file database; see the module docstring."""

    def __init__(self, path: Path, busy_timeout_ms: int) -> None:
        self._engine = sqlite_sync_engine(path, busy_timeout_ms)
        event.listen(self._engine, "connect", _no_autocheckpoint)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="core-sqlite-writer")
        self._checkpoints = sqlite_sync_engine(path, busy_timeout_ms)
        self._checkpoint_thread = ThreadPoolExecutor(1, thread_name_prefix="core-sqlite-checkpoint")
        self._written = 0
        self._checkpoint: asyncio.Future[None] | None = None

    async def run(self, statements: Statements, batch: list[Work]) -> list[Any]:
        """Insert what ``statements`` builds, then run the batch's sync tasks, in one
        transaction; return one result per piece of work (``None`` for row inserts)."""
        loop = asyncio.get_running_loop()
        written: list[Statement] = []
        results: list[Any] = await loop.run_in_executor(self._thread, self._write, statements, batch, written)
        self._written += sum(len(params) for _, params in written)
        self._written += sum(len(work.moves) for work in batch if isinstance(work, WriteSet))
        self._written += sum(len(result) for result in results if isinstance(result, list))
        if self._written >= CHECKPOINT_ROWS and self._checkpoint is None:
            self._written = 0
            self._checkpoint = loop.run_in_executor(self._checkpoint_thread, self._run_checkpoint)
            self._checkpoint.add_done_callback(self._checkpointed)
        return results

    async def close(self) -> None:
        """Wait for a running checkpoint, then close both connections and threads."""
        if self._checkpoint is not None:
            await asyncio.wait([self._checkpoint])
        loop = asyncio.get_running_loop()
        for engine, thread in ((self._engine, self._thread), (self._checkpoints, self._checkpoint_thread)):
            await loop.run_in_executor(thread, engine.dispose)
            thread.shutdown()

    def _write(self, statements: Statements, batch: list[Work], written: list[Statement]) -> list[Any]:
        with self._engine.connect() as conn, conn.execution_options(core_write=True).begin():
            written += statements(conn)
            for sql, params in written:
                conn.exec_driver_sql(sql, params)
            return [work.run(conn) if isinstance(work, SyncTask) else None for work in batch]

    def _run_checkpoint(self) -> None:
        with self._checkpoints.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def _checkpointed(self, future: asyncio.Future[None]) -> None:
        self._checkpoint = None
        if not future.cancelled() and future.exception() is not None:
            # The next checkpoint (or SQLite at the last close) catches up; nothing is lost.
            log.warning("WAL checkpoint of the SQLite store failed: %s", future.exception())


def _no_autocheckpoint(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint = 0")
    cursor.close()
