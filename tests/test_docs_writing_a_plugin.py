"""docs/writing-a-plugin.md is tested as written: its files are extracted, installed with pip
into a scratch virtualenv, listed, and run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.scratch import REPO, ScratchEnv

pytestmark = pytest.mark.slow

BLOCK = re.compile(r"```(?:python|toml)\n# file: (?P<path>\S+)\n(?P<body>.*?)```", re.S)


def extract(target: Path) -> list[str]:
    text = (REPO / "docs" / "writing-a-plugin.md").read_text()
    written = []
    for match in BLOCK.finditer(text):
        path = target / match["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(match["body"])
        written.append(match["path"])
    return written


def test_the_example_plugin_installs_lists_and_runs(scratch_env: ScratchEnv, tmp_path: Path) -> None:
    files = extract(tmp_path / "core-plugin-hello")
    assert "pyproject.toml" in files and "src/core_plugin_hello/plugin.py" in files
    scratch_env.install(tmp_path / "core-plugin-hello")
    try:
        rows = {r["name"]: r for r in json.loads(scratch_env.core("plugins", "list", "--json").stdout)}
        hello = rows["hello"]
        assert (hello["status"], hello["version"], hello["distribution"]) == ("active", "0.1.0", "core-plugin-hello")
        assert hello["hooks"] == ["core_cli_commands", "core_register_destinations", "core_startup"]

        said = scratch_env.core("hello", "--name", "Ada")
        assert said.returncode == 0, said.stderr
        assert said.stdout.strip() == "Hello, Ada!"

        code = '''
import asyncio, logging
from datetime import UTC, datetime
from hookspecs import Event, Job, Queue, Status, Toolkit
from core_plugin_hello.greeter import Greet

tk = Toolkit(logger=logging.getLogger("t"))
now = datetime.now(UTC)
action = Greet()
event = Event(id="e1", source="signup", name="created", context={}, data={"name": "Ada"}, received_at=now)
assert action.marshal(Event(id="e0", source="s", name="n", context={}, data={}, received_at=now), tk) is None
payload = action.marshal(event, tk)
ok = Job(id="j1", destination="hello", action="greet", event_id="e1", context={}, data=payload.data, created_at=now)
long = Job(id="j2", destination="hello", action="greet", event_id="e1", context={}, data={"greeting": "x" * 81},
           created_at=now)
event.jobs = [ok, long]
thens = asyncio.run(action.load(tk, Queue(events=[event])))
print([(list(t.jobs), t.error, t.force_discard) for t in thens])
'''
        result = scratch_env.python_code(code)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "[(['j1'], None, False), (['j2'], 'greeting too long', True)]"
    finally:
        scratch_env.uninstall("core-plugin-hello")
