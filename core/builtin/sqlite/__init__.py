"""Built-in ``sqlite``: the embedded store and wanderer on SQLite (dialect, engine, writer thread)."""
