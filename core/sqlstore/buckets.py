"""Token buckets in the SQL store: the ``rate_buckets`` table (store schema 4 -> 5) and its take.

A take is one transaction of the writer: create the bucket full if it is new (``INSERT … ON
CONFLICT DO NOTHING``), read it under a row lock (``SELECT … FOR UPDATE`` on PostgreSQL;
SQLite's ``BEGIN IMMEDIATE`` already makes the transaction the only writer), refill and take
(:func:`core.timing.take_tokens`), write it back. Concurrent takes of any processes on one
bucket are serialized by the lock, so together they never get more than the bucket holds.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.sqlstore.idempotency import UPSERT_DIALECTS
from core.sqlstore.schema import rate_buckets
from core.timing import RateLimit, take_tokens


async def add_rate_buckets(conn: AsyncConnection) -> None:
    """Part of store schema 4 -> 5: the ``rate_buckets`` table."""
    await conn.run_sync(lambda sync: rate_buckets.create(sync, checkfirst=True))


async def take(conn: AsyncConnection, bucket: str, wanted: int, limit: RateLimit, now: datetime) -> int:
    """Take up to ``wanted`` tokens of ``bucket`` (new: full); return how many were granted."""
    module = UPSERT_DIALECTS.get(conn.dialect.name)
    if module is None:
        raise NotImplementedError(f"rate limits need INSERT … ON CONFLICT, not known for {conn.dialect.name!r}")
    await conn.execute(
        module.insert(rate_buckets).values(bucket=bucket, tokens=float(limit.burst), updated_at=now)
        .on_conflict_do_nothing(index_elements=["bucket"])
    )
    row = (await conn.execute(
        select(rate_buckets.c.tokens, rate_buckets.c.updated_at)
        .where(rate_buckets.c.bucket == bucket).with_for_update()
    )).one()
    granted, left = take_tokens(row.tokens, row.updated_at, wanted, limit, now)
    # A scheduler whose clock is behind the last take's refills nothing and moves no time back.
    await conn.execute(
        update(rate_buckets).where(rate_buckets.c.bucket == bucket)
        .values(tokens=left, updated_at=max(now, row.updated_at))
    )
    return granted
