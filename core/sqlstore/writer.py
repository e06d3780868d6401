"""Group commit: one writer task turns concurrent writes into shared transactions.

Every write of the store (events, jobs, transitions, claims, recovery, purge) is a piece of
*work* submitted to one :class:`GroupWriter`. The writer takes the first waiting piece, waits
``delay`` seconds for more to arrive, takes up to ``max_weight`` rows' worth, and runs them in
ONE transaction; each caller's ``await`` returns only after that commit. A single writer
(``concurrency`` 1, SQLite) does not wait when more work is waiting already: under load the
next batch forms while one commits. With several transactions in flight (PostgreSQL) it always
waits: a slot freed would otherwise take a batch of one, and every commit waits for the disk.
Row inserts (:class:`WriteSet`) of the batch are merged, so a hundred one-event requests cost
one multi-row insert per table, not a hundred.

If the shared transaction fails for a reason other than :class:`~hookspecs.StoreUnavailable`
(say, one caller's duplicate id), the pieces are retried one transaction each so that only the
faulty caller gets the error. ``StoreUnavailable`` fails the whole batch at once. One writer
also means SQLite never has two writers of one process starving each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from hookspecs import StoreUnavailable, Transition

log = logging.getLogger(__name__)

Row = dict[str, Any]
#: Work that is not plain inserts: a coroutine run inside the shared transaction.
Task = Callable[[AsyncConnection], Awaitable[Any]]


@dataclass(slots=True)
class WriteSet:
    """Rows to insert, and guarded transitions (``moves``), merged across callers of a batch.

    ``transitions`` are first transitions of new jobs (stored as they are); ``moves`` are
    :meth:`~hookspecs.Store.add_transitions`' transitions, checked against their jobs' current
    status in the batch's transaction (:mod:`core.sqlstore.moves`); ``keys`` are the
    idempotency keys of the events (:mod:`core.sqlstore.idempotency`). A piece's result is the
    list of its refused moves, or of its duplicate events.
    """

    events: list[Row] = field(default_factory=list)
    jobs: list[Row] = field(default_factory=list)
    transitions: list[Row] = field(default_factory=list)
    states: list[Row] = field(default_factory=list)
    keys: list[Row] = field(default_factory=list)
    moves: list[Transition] = field(default_factory=list)

    @property
    def weight(self) -> int:
        return len(self.events) + len(self.jobs) + len(self.transitions) + len(self.moves)

    def extend(self, other: WriteSet) -> None:
        self.events += other.events
        self.jobs += other.jobs
        self.transitions += other.transitions
        self.states += other.states
        self.keys += other.keys
        self.moves += other.moves


@dataclass(frozen=True, slots=True)
class SyncTask:
    """Work on a plain (sync) SQLAlchemy connection. A dialect with a writer thread (SQLite)
    runs it there with the batch's inserts, in one hop from the event loop; the shared async
    path runs it through ``AsyncConnection.run_sync``."""

    run: Callable[[Connection], Any]


Work = WriteSet | Task | SyncTask


def merged(batch: list[Work]) -> WriteSet:
    """The row inserts of a batch as one :class:`WriteSet` (its tasks left out)."""
    rows = WriteSet()
    for work in batch:
        if isinstance(work, WriteSet):
            rows.extend(work)
    return rows


#: Runs a batch of work in one transaction and returns one result per piece, in order.
Transaction = Callable[[list[Work]], Awaitable[list[Any]]]


@dataclass(slots=True)
class WriterStats:
    """What the writer did: ``transactions`` committed for ``calls`` pieces of work."""

    transactions: int = 0
    calls: int = 0
    retried_batches: int = 0
    failed_calls: int = 0


@dataclass(slots=True)
class _Pending:
    work: Work
    future: asyncio.Future[Any]

    @property
    def weight(self) -> int:
        return max(1, self.work.weight) if isinstance(self.work, WriteSet) else 1


class GroupWriter:
    """The single writer of a store; see the module docstring.

    :param transaction: runs a list of work in one transaction (the store's dialect code).
    :param delay: seconds to wait after the first piece of a batch for others to join.
    :param max_weight: rows (or tasks) above which a batch is closed.
    :param concurrency: transactions in flight at once (1: one after the other). A server
        database may take more, so that a batch forms and runs while another one's commit
        waits for the disk.
    """

    def __init__(self, transaction: Transaction, *, delay: float = 0.002, max_weight: int = 5000,
                 concurrency: int = 1) -> None:
        self._transaction = transaction
        self._delay = delay
        self._max_weight = max_weight
        self._concurrency = concurrency
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.stats = WriterStats()

    def start(self) -> None:
        if self._task is None:
            self._queue = asyncio.Queue()  # bound to the running loop: a store may be reopened in another
            self._task = asyncio.get_running_loop().create_task(self._run(), name="core-store-writer")

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        task, self._task = self._task, None
        if task is not None:
            self._queue.put_nowait(None)
            await task

    async def submit(self, work: Work) -> Any:
        """Queue ``work``; return its result once its transaction committed (or raise)."""
        if self._task is None:
            raise StoreUnavailable("the store is closed (or was never opened)")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(work, future))
        return await future

    async def _run(self) -> None:
        slots = asyncio.Semaphore(self._concurrency)
        running: set[asyncio.Task[None]] = set()

        async def commit(batch: list[_Pending]) -> None:
            try:
                await self._commit(batch)
            finally:
                slots.release()

        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            await slots.acquire()
            if self._delay > 0 and (self._concurrency > 1 or self._queue.empty()):
                await asyncio.sleep(self._delay)
            batch, weight = [first], first.weight
            while weight < self._max_weight and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                weight += item.weight
            batch = [p for p in batch if not p.future.cancelled()]
            if not batch:
                slots.release()
            elif self._concurrency == 1:
                await commit(batch)
            else:
                task = asyncio.create_task(commit(batch))
                running.add(task)
                task.add_done_callback(running.discard)
        if running:
            await asyncio.gather(*running)

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            results = await self._transaction([p.work for p in batch])
        except StoreUnavailable as exc:
            self._fail(batch, exc)
            return
        except Exception as exc:  # noqa: BLE001 - isolate the faulty caller below
            if len(batch) == 1:
                self._fail(batch, exc)
                return
            log.debug("shared write of %d calls failed (%s); retrying them one by one", len(batch), exc)
            self.stats.retried_batches += 1
            for pending in batch:
                await self._commit([pending])
            return
        self.stats.transactions += 1
        self.stats.calls += len(batch)
        for pending, result in zip(batch, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)

    def _fail(self, batch: list[_Pending], exc: BaseException) -> None:
        self.stats.failed_calls += len(batch)
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(exc)
