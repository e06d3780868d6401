"""The store's tables, as SQLAlchemy Core metadata shared by every SQL dialect.

``events``, ``jobs`` and ``transitions`` are the append-only history; ``job_state`` is a
summary (one row per job: its latest status, attempt, due time and claim lease) updated in
place so that claiming touches only claimable rows. It can be rebuilt from ``transitions``,
which also keep the lease of every ``executing`` transition for that reason. The schema
version is kept by :mod:`core.sqlstore.versioning`, so a later release migrates the tables
instead of recreating them.

Times are timezone-aware UTC in and out (:class:`UTCDateTime`); JSON columns are text written
and read with orjson (:class:`JSONText`), which every database stores and no query looks into.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TextClause,
    bindparam,
    insert,
    select,
    text,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from hookspecs import CLAIMABLE_STATUSES, Status

#: The version of the tables below; bump it and add a step to ``SQLStore.schema_steps``.
SCHEMA_VERSION = 6
#: ``job_state.ready_at`` of a job without a due time: it sorts before every real time.
NO_DUE_TIME = datetime(1970, 1, 1, tzinfo=UTC)

ID = String(27)  # a KSUID
NAME = String(255)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime. Refuses naive datetimes (their zone is a guess).

    PostgreSQL stores it as ``timestamptz``; SQLite as fixed-width text (:func:`utc_text`), so
    that text order is time order and equal times are equal texts.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(String(26) if dialect.name == "sqlite" else DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return utc_text(value) if dialect.name == "sqlite" else utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return from_text(value)
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@functools.lru_cache(maxsize=4096)
def from_text(text: str) -> datetime:
    """A stored text as a UTC datetime. Cached: the rows of one read share a few times (a
    request's receive time, a claim's time), and a datetime is immutable."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is refused rather than guessed."""
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} given to the store; use a UTC-aware one")
    return value.astimezone(UTC)


def utc_text(value: datetime) -> str:
    """``value`` as SQLite stores it: ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC, always that wide."""
    return utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


class JSONText(TypeDecorator[Any]):
    """Any JSON value, stored as text written by orjson."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str:
        return orjson.dumps(value).decode()

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else orjson.loads(value)


def _status_in(statuses: frozenset[Status] | set[Status]) -> TextClause:
    """``job_state.status IN (...)`` with literal values: a partial index matches it only then."""
    values = ", ".join(f"'{status.value}'" for status in sorted(statuses))
    return text(f"job_state.status IN ({values})")


#: The claimable condition, written identically in the partial claim index and in claims.
CLAIMABLE_SQL = _status_in(CLAIMABLE_STATUSES)
#: The executing condition, written identically in the partial lease index and in recovery.
EXECUTING_SQL = _status_in({Status.EXECUTING})

SEQ = BigInteger().with_variant(Integer, "sqlite")  # SQLite: the rowid, appended in order

metadata = MetaData()

# The KSUID ids are random within their second, so every index keyed by them takes writes on
# random pages. Only the lookups by id use them; everything that grows with traffic (job
# state, history, claim order) is keyed by ``jobs.seq``, which appends in insertion order.

events = Table(
    "events", metadata,
    Column("id", ID, primary_key=True),
    Column("source", NAME, nullable=False),
    Column("name", NAME, nullable=False),
    Column("context", JSONText, nullable=False),
    Column("data", JSONText, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("ingested_at", UTCDateTime, nullable=False),
    Index("ix_events_received_at", "received_at"),
)

jobs = Table(
    "jobs", metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("id", ID, nullable=False, unique=True),
    Column("event_id", ID, ForeignKey("events.id"), nullable=False),
    Column("destination", NAME, nullable=False),
    Column("action", NAME, nullable=False),
    Column("context", JSONText, nullable=False),
    Column("data", JSONText, nullable=False),
    Column("version", NAME),
    Column("parent_job_id", ID),
    Column("created_at", UTCDateTime, nullable=False),
    Column("idempotency_key", NAME),  # the event's (schema version 2)
    Column("ordering_key", NAME),  # its action's ordering key (schema version 5)
    Index("ix_jobs_event_id", "event_id"),
    # Claims look for an earlier unfinished job of the same key: only ordered jobs are indexed.
    Index("ix_jobs_ordering", "destination", "action", "ordering_key", "seq",
          sqlite_where=text("ordering_key IS NOT NULL"), postgresql_where=text("ordering_key IS NOT NULL")),
)

# One row per idempotency key a source used: the primary key is what deduplicates, in every
# process at once. Not history: a key is removed once its window has ended (purge), and the
# event it names may be purged before that (its id is still the answer to a retry).
idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("source", NAME, primary_key=True),
    Column("key", NAME, primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("event_id", ID, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_idempotency_keys_expires_at", "expires_at"),
)

# One row per paused action (action "*": the whole destination), with who paused it and why.
# State, not history: resuming removes the row.
pauses = Table(
    "pauses", metadata,
    Column("destination", NAME, primary_key=True),
    Column("action", NAME, primary_key=True),
    Column("who", NAME, nullable=False),
    Column("reason", Text),
    Column("created_at", UTCDateTime, nullable=False),
)

# One row per disabled flow, with who disabled it and why. State, not history: enabling removes
# the row.
disabled_flows = Table(
    "disabled_flows", metadata,
    Column("flow", NAME, primary_key=True),
    Column("who", NAME, nullable=False),
    Column("reason", Text),
    Column("created_at", UTCDateTime, nullable=False),
)

# One token bucket per rate-limited action, shared by every scheduler of the store
# (core.sqlstore.buckets). State, not history: each take updates its row in place.
rate_buckets = Table(
    "rate_buckets", metadata,
    Column("bucket", NAME, primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

transitions = Table(
    "transitions", metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),  # insertion order = history order
    Column("id", ID, nullable=False),
    Column("job_seq", SEQ, nullable=False),
    Column("job_id", ID, nullable=False),
    Column("event_id", ID, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("state_before", String(16)),
    Column("state_after", String(16), nullable=False),
    Column("error", Text),
    Column("due_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    # Set on ``executing`` transitions written by a claim, so job_state can be rebuilt.
    Column("lease_owner", NAME),
    Column("lease_expires_at", UTCDateTime),
    Index("ix_transitions_job", "job_seq", "seq"),
    Index("ix_transitions_created_at", "created_at"),  # the dashboard's last hour (schema 6)
)

job_state = Table(
    "job_state", metadata,
    Column("job_seq", SEQ, primary_key=True, autoincrement=False),
    Column("destination", NAME, nullable=False),
    Column("action", NAME, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("due_at", UTCDateTime),
    Column("ready_at", UTCDateTime, nullable=False),  # due_at, or NO_DUE_TIME: keeps claims on a range
    Column("lease_owner", NAME),
    Column("lease_expires_at", UTCDateTime),
    # Claims read only due, claimable rows of one action, in claim order: flat as history grows.
    Index(
        "ix_job_state_claim", "destination", "action", "ready_at", "job_seq",
        sqlite_where=CLAIMABLE_SQL, postgresql_where=CLAIMABLE_SQL,
    ),
    Index("ix_job_state_lease", "lease_expires_at", sqlite_where=EXECUTING_SQL, postgresql_where=EXECUTING_SQL),
    Index("ix_job_state_status", "status", "job_seq"),
    # The dashboard's per-action counts, oldest waiting job and failures (schema 6).
    Index("ix_job_state_action_status", "destination", "action", "status", "job_seq"),
)

#: ``jobs.seq`` of the job whose id is bound as ``job_ref``: rows of ``transitions`` and
#: ``job_state`` name their job by id and get its seq in the same statement.
JOB_SEQ_OF_REF = select(jobs.c.seq).where(jobs.c.id == bindparam("job_ref")).scalar_subquery()
#: The multi-row insert of each table, as :meth:`SQLStore.insert_rows` receives rows for it.
INSERTS = {
    table.name: insert(table).values(job_seq=JOB_SEQ_OF_REF) if "job_seq" in table.c else insert(table)
    for table in (events, jobs, transitions, job_state)
}
