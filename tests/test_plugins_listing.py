"""``core plugins list`` shows the URL schemes of every provided adapter (kinds sharing a name
and schemes in one entry); ``--json`` keeps ``provides`` and adds each adapter's kind, name and
schemes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from core.cli import main


def _listing(*args: str) -> str:
    result = CliRunner().invoke(main, ["plugins", "list", "--all", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_table_shows_each_adapter_with_its_schemes(project: Path) -> None:
    rows = {line.split()[0]: line for line in _listing().splitlines()[1:]}
    assert " store/supervisor/wanderer:sqlite (sqlite) " in rows["sqlite"]
    assert "pubsub:memory (memory)" in rows["memory"]
    assert "supervisor:local (local)" in rows["local"]


def test_json_keeps_provides_and_gains_the_adapters_with_their_schemes(project: Path) -> None:
    rows = {row["name"]: row for row in json.loads(_listing("--json"))}
    assert rows["sqlite"]["provides"] == ["store:sqlite", "supervisor:sqlite", "wanderer:sqlite"]
    assert rows["sqlite"]["adapters"] == [
        {"kind": "store", "name": "sqlite", "schemes": ["sqlite"]},
        {"kind": "supervisor", "name": "sqlite", "schemes": ["sqlite"]},
        {"kind": "wanderer", "name": "sqlite", "schemes": ["sqlite"]},
    ]
    assert rows["memory"]["adapters"] == [{"kind": "pubsub", "name": "memory", "schemes": ["memory"]}]
