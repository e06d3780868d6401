"""``core explain``: the jobs an event would create, as a table or JSON, storing nothing (no
store is even opened), with clear errors for unknown sources and malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.admin_kit import make_project, run_core

pytestmark = pytest.mark.slow


def test_explain_prints_the_jobs_and_stores_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    (project / "event.json").write_text('{"name": "track", "context": {"user": "u1"}, "data": {"order": 1}}')
    (project / "payload.json").write_text('{"order": 2}')
    shown = run_core(project, "explain", "--source", "web", "--trigger", "track", "event.json")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "flows: web-to-warehouse" and lines[1].split() == ["ACTION", "VERSION", "CONTEXT", "DATA"]
    assert lines[2].split() == ["warehouse.insert", "-", '{"user":"u1"}', '{"order":1}']
    as_json = run_core(project, "explain", "--source", "web", "--trigger", "track", "--data", "--json", "payload.json")
    assert as_json.returncode == 0, as_json.stderr
    done = json.loads(as_json.stdout)
    assert done["flows"] == ["web-to-warehouse"] and done["errors"] == []
    assert [(j["destination"], j["action"], j["data"]) for j in done["jobs"]] == [("warehouse", "insert", {"order": 2})]
    assert not (project / "core.db").exists()


def test_explain_errors(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    (project / "event.json").write_text('{"order": 1}')
    (project / "broken.json").write_text("{")
    unknown = run_core(project, "explain", "--source", "app", "--trigger", "track", "--data", "event.json")
    assert unknown.returncode == 2 and "'app' is not a source" in unknown.stderr and "allowed: web" in unknown.stderr
    trigger = run_core(project, "explain", "--source", "web", "--trigger", "nope", "--data", "event.json")
    assert trigger.returncode == 2 and "allowed: track" in trigger.stderr
    not_event = run_core(project, "explain", "--source", "web", "--trigger", "track", "event.json")
    assert not_event.returncode == 2 and "--data" in not_event.stderr
    broken = run_core(project, "explain", "--source", "web", "--trigger", "track", "broken.json")
    assert broken.returncode == 2 and "not JSON" in broken.stderr and "Traceback" not in broken.stderr
