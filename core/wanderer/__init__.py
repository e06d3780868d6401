"""The migration runner (:mod:`~core.wanderer.runner`): applies and rolls back migrations while
recording them in a wanderer (the SQL one: :class:`core.sqlstore.SQLWanderer`, on SQLite
:class:`core.builtin.sqlite.wanderer.SQLiteWanderer`)."""
