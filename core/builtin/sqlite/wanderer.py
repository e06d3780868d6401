"""``SQLiteWanderer``: the migration history in the SQLite file of the store.

The table and its queries are :class:`~core.sqlstore.SQLWanderer`'s; the connections are the
store's (:class:`~core.builtin.sqlite.dialect.SQLiteDialect`). The wanderer shares the store's
option table (``[options.sqlite]``): it takes ``busy_timeout_ms`` and ignores the store's own
options.
"""

from __future__ import annotations

from typing import Any

from core.builtin.sqlite.dialect import SQLiteDialect
from core.sqlstore import SQLWanderer

#: Options of the shared ``[options.sqlite]`` table that belong to the store.
STORE_OPTIONS = frozenset({"commit_delay_ms", "max_batch", "purge_batch"})


class SQLiteWanderer(SQLiteDialect, SQLWanderer):
    """:class:`~hookspecs.Wanderer` on a SQLite file (``sqlite:////abs/path.db``).

    :param busy_timeout_ms: see :class:`~core.builtin.sqlite.dialect.SQLiteDialect`.
    """

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **{name: value for name, value in options.items() if name not in STORE_OPTIONS})
