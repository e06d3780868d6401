"""SQL warehouses for ``core``: :class:`SQLDestination` loads jobs into tables through
SQLAlchemy (PostgreSQL with asyncpg, MariaDB/MySQL with aiomysql, SQLite with aiosqlite, other
dialects by their URL), with :class:`TableAction` (batched inserts, upsert by key, COPY on
PostgreSQL) and :class:`TemplateAction` (a SQL template per job). Templates are Blacksmith's
TLT: Jinja2 in a sandbox where every value is a bound parameter (:func:`render`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core_plugin_sql._tlt import render
    from core_plugin_sql._toml import destinations_from_toml
    from core_plugin_sql.destination import Column, SQLDestination, TableAction, TemplateAction, engine_url

#: Where each public name lives: imported on first use, so that loading the plugin module
#: (``core plugins list``) imports neither SQLAlchemy's dialects nor Jinja2.
_HOMES = {
    "render": "_tlt", "destinations_from_toml": "_toml", "Column": "destination", "SQLDestination": "destination",
    "TableAction": "destination", "TemplateAction": "destination", "engine_url": "destination",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'core_plugin_sql' has no attribute {name!r}")
    return getattr(importlib.import_module(f"core_plugin_sql.{home}"), name)

__all__ = [
    "Column",
    "SQLDestination",
    "TableAction",
    "TemplateAction",
    "destinations_from_toml",
    "engine_url",
    "render",
]
