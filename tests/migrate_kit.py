"""Helpers of the ``core migrate`` tests: a project in a directory (core.toml, an app whose
destination and source log what their ``init`` / ``migrate`` / ``shutdown`` do, SQL files), and
the CLI run in-process with click's runner."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner, Result

from core.cli import main

APP = '''
from pathlib import Path
from hookspecs import Action, Destination, HttpTrigger, Migration, Source, Trigger, hookimpl

LOG = Path(__file__).with_name("calls.log")


def note(text):
    with LOG.open("a") as f:
        f.write(text + "\\n")


class Keep(Action):
    name = "keep"


class Own(Action):
    name = "own"

    async def migrate(self, toolkit, script):
        note(f"own.migrate {script.direction.value} {script.version}")


class Warehouse(Destination):
    async def init(self, toolkit):
        note("wh.init")

    async def shutdown(self, toolkit):
        note("wh.shutdown")

    async def migrate(self, toolkit, script):
        note(f"wh.migrate {script.scope} {script.direction.value} {script.version}")
        if "FAIL" in script.text:
            raise RuntimeError("the warehouse refused it")


class Shop(Source):
    async def init(self, toolkit):
        note("shop.init")

    async def shutdown(self, toolkit):
        note("shop.shutdown")

    async def migrate(self, toolkit, script):
        note(f"shop.migrate {script.scope} {script.direction.value} {script.version}")


async def _up():
    note("code.up")


async def _down():
    note("code.down")


@hookimpl
def core_register_sources():
    return [Shop("shop", [HttpTrigger("orders", "/orders")])]


@hookimpl
def core_register_destinations():
    return [Warehouse("wh", actions=[Keep(), Own()],
                      migrations=[Migration("20250101000000", "", "declared by the destination", _up, _down)])]


@hookimpl
def core_register_migrations():
    return [Migration("20250102000000", "d:wh", "offered by the hook", _up, _down)]
'''


def make_project(root: Path, *, app: str = APP, supervisor: str = "local://migrate-tests") -> Path:
    """Write core.toml and app.py in ``root``; return the configuration file."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "app.py").write_text(app)
    config = root / "core.toml"
    db = root / "core.db"
    config.write_text(
        f'app = "app.py"\nstore = "sqlite:///{db}"\nwanderer = "sqlite:///{db}"\n'
        f'supervisor = "{supervisor}"\npubsub = ""\n'
    )
    return config


def sql(root: Path, scope: str, version: str, name: str, up: str, down: str) -> None:
    """Write the two files of a migration of ``scope``."""
    folder = root / "migrations" / scope
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{version}.{name}.up.sql").write_text(up)
    (folder / f"{version}.{name}.down.sql").write_text(down)


def cli(config: Path, *args: str) -> Result:
    """``core --config CONFIG ARGS…`` in this process."""
    return CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False,
                              env={"CORE_ADMIN_PORT": "0"})


def calls(root: Path) -> list[str]:
    """What the app logged, and clear the log."""
    log = root / "calls.log"
    if not log.exists():
        return []
    lines = log.read_text().splitlines()
    log.unlink()
    return lines


def tables(db: Path) -> set[str]:
    """The tests' own tables and indexes (named ``mig_…``) in a SQLite file."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'mig_%'").fetchall()
    return {name for (name,) in rows}
