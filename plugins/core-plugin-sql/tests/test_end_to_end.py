"""End to end, as real processes: a quickstart-style pipeline loads orders into a PostgreSQL and
a MariaDB table through ``core-plugin-sql``. ``core migrate run`` creates the tables (the
warehouses' own migrations), ``core start`` takes orders over HTTP and delivers them,
``core run query --json`` returns the rows; ``core run operation`` and its errors too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

APP = '''
from hookspecs import Flow, HttpTrigger, Schedule, Source, hookimpl
from core_plugin_sql import Column, SQLDestination, TableAction

COLUMNS = [Column("id"), Column("total", "numeric"), Column("customer")]
FAST = Schedule(interval="@every 1s", max_retries=3)


@hookimpl
def core_register_sources():
    return [Source("shop", triggers=[HttpTrigger("orders", "/webhooks/orders")])]


@hookimpl
def core_register_destinations():
    return [
        SQLDestination("pg", [TableAction("orders", "orders", COLUMNS, key=["id"])], schedule=FAST),
        SQLDestination("maria", [TableAction("orders", "orders", COLUMNS)], schedule=FAST),
    ]


@hookimpl
def core_register_flows():
    return [Flow("orders", source="shop", actions=["pg.orders", "maria.orders"])]
'''

TABLE = "CREATE TABLE orders (id VARCHAR(40) PRIMARY KEY, total NUMERIC(10, 2) NOT NULL, customer VARCHAR(80));"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def project(tmp_path: Path, pg_url: str, maria_url: str) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "core.toml").write_text(
        f'app = "app.py"\nstore = "sqlite:///{tmp_path / "core.db"}"\nwanderer = "sqlite:///{tmp_path / "core.db"}"\n'
        f'pubsub = ""\n[options.pg]\nurl = "{pg_url}"\n[options.maria]\nurl = "{maria_url}"\n'
    )
    for scope in ("d:pg", "d:maria"):
        folder = tmp_path / "migrations" / scope
        folder.mkdir(parents=True)
        (folder / "20260101000000.orders.up.sql").write_text(TABLE)
        (folder / "20260101000000.orders.down.sql").write_text("DROP TABLE orders;")
    (tmp_path / "orders.sql").write_text(
        "SELECT id, total, customer FROM orders WHERE total >= {{ min_total }} ORDER BY id")
    return tmp_path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CORE_")}


def core(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=project, env=_env(), capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.fixture
def started(project: Path) -> Iterator[str]:
    migrated = core(project, "migrate", "run")
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "core", "start", "--port", str(port), "--require-migrations"],
                            cwd=project, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _up(url), 30)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _up(url: str) -> bool:
    try:
        httpx.get(url + "/healthz", timeout=1)
        return True
    except httpx.HTTPError:
        return False


def eventually(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, "timed out"
            return value
        time.sleep(0.3)


def query(project: Path, destination: str) -> list[dict[str, Any]]:
    done = core(project, "run", "query", "orders.sql", "--destination", destination, "--var", "min_total=0",
                "--json")
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def test_orders_reach_postgresql_and_mariadb_and_query_returns_them(project: Path, started: str) -> None:
    orders = [{"id": "o1", "total": 12.5, "customer": "ann"}, {"id": "o2", "total": 30, "customer": "bob"},
              {"id": "o3", "total": 7.25, "customer": "o'hara'); DROP TABLE orders; --"}]
    for order in orders:
        answer = httpx.post(started + "/webhooks/orders", json={"data": order}, timeout=10)
        assert answer.status_code == 202, answer.text
    expected = [{"id": "o1", "total": "12.50", "customer": "ann"}, {"id": "o2", "total": "30.00", "customer": "bob"},
                {"id": "o3", "total": "7.25", "customer": "o'hara'); DROP TABLE orders; --"}]
    for destination in ("pg", "maria"):
        def loaded(name: str = destination) -> bool:
            return query(project, name) == expected

        assert eventually(loaded, 60)


def test_run_operation_query_formats_and_errors(project: Path, pg_url: str) -> None:
    assert core(project, "migrate", "run").returncode == 0
    (project / "add.sql").write_text(
        "INSERT INTO orders (id, total, customer) VALUES ({{ id }}, {{ total }}, {{ who }});\n"
        "UPDATE orders SET total = total + 1 WHERE id = {{ id }};")
    dry = core(project, "run", "operation", "add.sql", "--destination", "pg", "--var", "id=x1", "--var", "total=5",
               "--var", "who=ann", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "VALUES (:p0, :p1, :p2);" in dry.stdout and '"p0":"x1"' in dry.stdout and "nothing ran" in dry.stdout
    assert query(project, "pg") == []
    done = core(project, "run", "operation", "add.sql", "--destination", "pg", "--var", "id=x1", "--var", "total=5",
                "--var", "who=ann")
    assert done.returncode == 0 and "2 row(s) changed" in done.stdout
    csv = core(project, "run", "query", "orders.sql", "--destination", "pg", "--var", "min_total=1", "--csv")
    assert csv.stdout == "id,total,customer\nx1,6.00,ann\n"
    # the same operation again fails on the key: one transaction, nothing of it stays
    again = core(project, "run", "operation", "add.sql", "--destination", "pg", "--var", "id=x1", "--var",
                 "total=5", "--var", "who=ann")
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert "error: the operation failed on destination 'pg': IntegrityError" in again.stderr
    assert "nothing of it was kept" in again.stderr
    assert query(project, "pg") == [{"id": "x1", "total": "6.00", "customer": "ann"}]
    for args, message in [
        (["run", "query", "missing.sql", "--destination", "pg"], "error: cannot read missing.sql"),
        (["run", "query", "orders.sql", "--destination", "nope"], "error: destination 'nope' is not registered"),
        (["run", "query", "orders.sql"], "error: 2 SQL destinations are registered: name one"),
        (["run", "query", "orders.sql", "--destination", "pg"], "'min_total' is undefined"),
        (["run", "query", "add.sql", "--destination", "pg", "--var", "id=1", "--var", "total=1", "--var", "who=x"],
         "the last statement of a query returns no rows"),
    ]:
        failed = core(project, *args)
        assert failed.returncode == 2 and message in failed.stderr, failed.stderr
        assert "Traceback" not in failed.stderr
