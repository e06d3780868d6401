"""SQL destinations declared in TOML::

    [warehouse]
    url = "postgresql://app@db/warehouse"      # or url_env = "WAREHOUSE_URL"
    schedule = { interval = "@every 5m", max_retries = 10 }

    [[warehouse.tables]]
    table = "orders"                            # the action is "insert_orders" unless action = "…"
    columns = { id = "text", total = "numeric", customer = "text" }
    key = ["id"]                                # optional: upsert by key

    [[warehouse.templates]]
    action = "count_order"
    sql = "UPDATE counters SET n = n + 1 WHERE name = {{ data.kind }}"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hookspecs import Action, CoreError, Schedule

from core_plugin_sql.destination import Column, SQLDestination, TableAction, TemplateAction


def destinations_from_toml(source: str | Path | Mapping[str, Any]) -> list[SQLDestination]:
    """The destinations a TOML file (or its parsed tables) declares, one per top-level table."""
    where = str(source) if not isinstance(source, Mapping) else "the TOML tables"
    if isinstance(source, Mapping):
        data = dict(source)
    else:
        try:
            data = tomllib.loads(Path(source).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CoreError(f"cannot read SQL destinations from {where}: {exc}") from None
    out = []
    for name, spec in data.items():
        try:
            out.append(_destination(name, spec))
        except (KeyError, TypeError, ValueError) as exc:
            raise CoreError(f"{where}: destination {name!r}: {exc}",
                            hint="see the core_plugin_sql._toml docstring (docs/sql.md) for the keys") from None
    return out


def _destination(name: str, spec: Mapping[str, Any]) -> SQLDestination:
    url = spec.get("url")
    if url is None and "url_env" in spec:
        url = os.environ.get(spec["url_env"])
        if not url:
            raise ValueError(f"the environment variable {spec['url_env']} is not set")
    actions: list[Action] = []
    for table in spec.get("tables", []):
        columns = [Column(column, kind) for column, kind in table["columns"].items()]
        actions.append(TableAction(table.get("action", f"insert_{table['table'].rpartition('.')[2]}"),
                                   table["table"], columns, key=table.get("key", ())))
    for template in spec.get("templates", []):
        actions.append(TemplateAction(template["action"], template["sql"]))
    schedule = Schedule(**spec["schedule"]) if "schedule" in spec else None
    return SQLDestination(name, actions, url=url, schedule=schedule)
