"""Property 17 of the reliability battery: with a broken plugin (it raises on import) and a
working one (``example``, which logs ``example plugin sees gateway start``) installed in a
scratch virtualenv, a real ``core start gateway`` starts and answers ``/_health`` with the
plugins on (the broken one's error named in one line at start and listed by ``core plugins
list``), with both blocklisted (``CORE_DISABLE_PLUGINS``) and with autoload off
(``CORE_LOAD_PLUGINS=""``): then neither is loaded, and both are listed ``disabled``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.chaos_kit import INGEST_APP
from tests.scratch import TEST_PLUGINS, ScratchEnv

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(240)]

_BANNER = re.compile(r"listening on (http://\S+)")
BROKEN = "core: plugin broken (core-plugin-broken) is not loaded: import failed: RuntimeError: boom"
EXAMPLE = "example plugin sees gateway start"


@pytest.fixture(scope="module")
def installed(scratch_env: ScratchEnv) -> Iterator[ScratchEnv]:
    """The scratch environment with the broken and the example plugins installed."""
    scratch_env.install(TEST_PLUGINS / "core-plugin-broken")
    scratch_env.install(TEST_PLUGINS / "core-plugin-example")
    yield scratch_env
    scratch_env.uninstall("core-plugin-broken")
    scratch_env.uninstall("core-plugin-example")


def started_gateway(env: ScratchEnv, project: Path, switches: dict[str, str]) -> str:
    """Run ``core start gateway`` in ``project`` until ``/_health`` answers 200, then SIGTERM it:
    what it printed (it must exit 0)."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "app.py").write_text(INGEST_APP)
    (project / "core.toml").write_text('app = "app.py"\nstore = "sqlite:///core.db"\npubsub = ""\n'
                                       'supervisor = ""\nwanderer = ""\n')
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")}
    log = project / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(env.python), "-m", "core", "start", "gateway", "--port", "0"], cwd=project,
                                   env={**clean, "PYTHONUNBUFFERED": "1", **switches}, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (banner := _BANNER.search(log.read_text())):
            assert process.poll() is None, f"the gateway exited {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no banner within 60s:\n{log.read_text()}"
            time.sleep(0.1)
        assert httpx.get(f"{banner.group(1)}/_health", timeout=10).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=30)
    output = log.read_text()
    assert status == 0 and "core: stopped" in output, output
    return output


def statuses(env: ScratchEnv, switches: dict[str, str]) -> dict[str, tuple[str, str]]:
    """``core plugins list --json`` under ``switches``: name -> (status, error)."""
    listed = env.core("plugins", "list", "--json", env=switches)
    assert listed.returncode == 0, listed.stderr
    return {row["name"]: (row["status"], str(row.get("error") or "")) for row in json.loads(listed.stdout)}


def test_a_broken_plugin_is_named_at_start_and_the_host_serves(installed: ScratchEnv, tmp_path: Path) -> None:
    output = started_gateway(installed, tmp_path, {})
    assert [line for line in output.splitlines() if line.startswith(BROKEN)], output
    assert EXAMPLE in output, output
    listed = statuses(installed, {})
    assert listed["broken"][0] == "error" and "boom" in listed["broken"][1]
    assert listed["example"][0] == "active"


@pytest.mark.parametrize("switches", [{"CORE_DISABLE_PLUGINS": "broken,example"}, {"CORE_LOAD_PLUGINS": ""}],
                         ids=["blocklisted", "autoload-off"])
def test_a_blocklisted_or_not_autoloaded_plugin_is_not_loaded_and_the_host_serves(
    installed: ScratchEnv, tmp_path: Path, switches: dict[str, str]
) -> None:
    output = started_gateway(installed, tmp_path, switches)
    assert "core: plugin broken" not in output and EXAMPLE not in output, output
    listed = statuses(installed, switches)
    assert listed["broken"][0] == "disabled" and listed["example"][0] == "disabled", listed
