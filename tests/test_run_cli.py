"""``core run operation|query``: the CLI side, against a small SQLite warehouse of the test's
own that implements :class:`hookspecs.SQLWarehouse` (core-plugin-sql's tests run the real one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.migrate_kit import cli, make_project

APP = '''
import sqlite3
from pathlib import Path
from hookspecs import Action, Destination, QueryResult, RenderedSQL, hookimpl

DB = Path(__file__).with_name("wh.db")


class Keep(Action):
    name = "keep"


class Warehouse(Destination):
    """Statements split on ';', variables passed as named parameters."""

    async def init(self, toolkit):
        self.conn = sqlite3.connect(DB)

    async def shutdown(self, toolkit):
        self.conn.close()

    def render(self, template, variables=None):
        return RenderedSQL([s.strip() for s in template.split(";") if s.strip()], dict(variables or {}))

    async def run_operation(self, sql):
        with self.conn:
            return sum(self.conn.execute(s, dict(sql.params)).rowcount for s in sql.statements)

    async def run_query(self, sql):
        cursor = self.conn.execute(sql.statements[-1], dict(sql.params))
        return QueryResult([d[0] for d in cursor.description], cursor.fetchall())


@hookimpl
def core_register_destinations():
    return [Warehouse("wh", actions=[Keep()]), Destination("plain", actions=[Keep()])]
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    config = make_project(tmp_path, app=APP)
    (tmp_path / "setup.sql").write_text("CREATE TABLE t (id TEXT, n REAL); INSERT INTO t VALUES (:id, 1.5)")
    (tmp_path / "q.sql").write_text("SELECT id, n FROM t WHERE n > :min ORDER BY id")
    return config


def test_operation_then_query_as_json_csv_and_table(project: Path) -> None:
    dry = cli(project, "run", "operation", "setup.sql", "--var", "id=o'1", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "CREATE TABLE t (id TEXT, n REAL);\nINSERT INTO t VALUES (:id, 1.5);" in dry.output
    assert '-- parameters: {"id":"o\'1"}' in dry.output
    done = cli(project, "run", "operation", "setup.sql", "--var", "id=o'1")
    assert done.exit_code == 0 and "row(s) changed" in done.output
    as_json = cli(project, "run", "query", "q.sql", "--destination", "wh", "--var", "min=1", "--json")
    assert json.loads(as_json.output) == [{"id": "o'1", "n": 1.5}]
    assert cli(project, "run", "query", "q.sql", "--var", "min=1", "--csv").output == "id,n\no'1,1.5\n"
    table = cli(project, "run", "query", "q.sql", "--var", "min=1").output
    assert table.splitlines()[0].split() == ["id", "n"]
    assert cli(project, "run", "query", "q.sql", "--var", "min=9").output.strip() == "No rows."


@pytest.mark.parametrize(("args", "message"), [
    (["run", "query", "nope.sql"], "error: cannot read nope.sql"),
    (["run", "query", "q.sql", "--destination", "plain"], "error: destination 'plain' is not a SQL destination"),
    (["run", "query", "q.sql", "--destination", "ghost"], "error: destination 'ghost' is not registered"),
    (["run", "query", "q.sql", "--var", "min"], "error: --var 'min' is not NAME=VALUE"),
    (["run", "query", "q.sql", "--json", "--csv"], "error: --json and --csv cannot be used together"),
])
def test_bad_input_is_one_clear_error(project: Path, args: list[str], message: str) -> None:
    result = cli(project, *args)
    assert result.exit_code == 2 and result.output.startswith(message), result.output


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli.migrate import _progress
    from hookspecs import Direction, Migration

    async def step() -> None:
        return None

    migration = Migration("001", "store", "one", step, step)
    _progress("applying")(migration, Direction.UP, 0, 2)
    assert capsys.readouterr().out == "applying 1/2: store 001 one\n"
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    _progress("applying")(migration, Direction.UP, 1, 2)
    out = capsys.readouterr().out
    assert out.startswith("\r[############............] 2/2 applying store 001 one") and "\n" not in out
