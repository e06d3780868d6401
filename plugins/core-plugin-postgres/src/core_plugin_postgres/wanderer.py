"""``PostgresWanderer``: the toolkit's :class:`core.sqlstore.SQLWanderer` on PostgreSQL.

The table (``wanderer_runs``, schema version kept by ``ensure_schema`` under the component
``wanderer``) and the queries are the core's, which are dialect-neutral. PostgreSQL adds two
things: the table is created under the plugin's schema lock, so that nodes starting together
do not race on it, and ``applied`` asks the database for the latest transition of each
version, ``acknowledged`` marks aside (``DISTINCT ON``), instead of reading the scope's whole
history.
"""

from __future__ import annotations

from core.sqlstore import SQLWanderer
from hookspecs import redacted_url
from sqlalchemy import text

from core_plugin_postgres._pg import schema_locked

APPLIED = text("""
SELECT version FROM (
    SELECT DISTINCT ON (version) version, direction, status FROM wanderer_runs
    WHERE scope = :scope AND status <> 'acknowledged' ORDER BY version, seq DESC
) AS latest
WHERE direction = 'up' AND status = 'succeeded' ORDER BY version
""")


class PostgresWanderer(SQLWanderer):
    """:class:`~hookspecs.Wanderer` on PostgreSQL (``postgresql://…``); no options."""

    def __repr__(self) -> str:
        return f"PostgresWanderer({redacted_url(self.url)!r})"

    async def open(self) -> None:
        """Connect and create or upgrade ``wanderer_runs``, one node at a time."""
        async with schema_locked(self.url, "the wanderer database"):
            await super().open()

    async def applied(self, scope: str) -> list[str]:
        """Versions whose latest transition (``acknowledged`` marks aside) is a succeeded ``up``, in version order."""
        async with self.connection() as conn:
            return list((await conn.execute(APPLIED, {"scope": scope})).scalars())
