"""The plugin module: found by entry point, light (no driver, no Jinja2 imported)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hookspecs import SQLWarehouse

from core_plugin_sql import SQLDestination


def test_listing_plugins_imports_no_driver_nor_jinja(tmp_path: Path) -> None:
    code = (
        "import sys; from core.plugins import PluginHost; from core.config import load_settings;"
        "host = PluginHost(load_settings()); r = host.records['sql'];"
        "print(r.status, r.distribution);"
        "print([m for m in ('jinja2', 'aiomysql', 'asyncpg', 'core_plugin_sql.destination') if m in sys.modules])"
    )
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                         env=env).stdout
    status, imported = out.splitlines()
    assert status == "active core-plugin-sql"
    assert imported == "[]"


def test_a_sql_destination_is_a_warehouse_and_hides_its_password() -> None:
    destination = SQLDestination("wh", [], url="mysql://core:s3cret@127.0.0.1/wh")
    assert isinstance(destination, SQLWarehouse)
    assert "s3cret" not in repr(destination)
    assert destination.dialect.name == "mysql"
