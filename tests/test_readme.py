"""Issue 22, item 6: the README's first command, run as written on a fresh copy of the
repository, starts a project of the user's own whose gateway answers a POST.

The copy holds the files git tracks (plus new files it does not ignore), so it is what a fresh
clone of this tree would be. A fresh virtualenv that downloads every dependency is too slow for
the suite, so the command runs in a scratch venv layered over this interpreter's packages
(:class:`tests.scratch.ScratchEnv`): its ``python3`` is the venv's, and the command's
``pip install -e .`` really installs the copy (hatchling from the configured index, the
dependencies already satisfied), so ``core`` on its ``PATH`` is the copy's. The command is
taken from the README itself and run by ``bash -c`` as a user pastes it, with a bounded
timeout; only ``CORE_GATEWAY_PORT`` is set, so that it does not clash with other processes.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from core.cli import main
from tests.scratch import REPO, ScratchEnv

pytestmark = pytest.mark.slow
TIMEOUT = 240.0


def first_command() -> str:
    """The first ``sh`` block of the README's "fresh machine" section: one line."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Set up on a fresh machine", 1)[1]
    block = re.search(r"```sh\n(.*?)\n```", section, re.S)
    assert block is not None
    lines = block.group(1).strip().splitlines()
    assert len(lines) == 1, "the first command must stay one line a newcomer can paste"
    return lines[0]


def fresh_copy(target: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
        capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file() or source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name, follow_symlinks=False)
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_readme_s_first_command_starts_a_project_of_one_s_own(tmp_path: Path) -> None:
    command = first_command()
    assert "core init" in command and "core start" in command
    clone = fresh_copy(tmp_path / "core")
    venv = ScratchEnv(tmp_path / "venv")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CORE_", "VIRTUAL_ENV", "PYTHON"))}
    env |= {"PATH": f"{venv.path / 'bin'}:{env['PATH']}", "CORE_GATEWAY_PORT": str(port), "CORE_LOAD_PLUGINS": ""}
    process = subprocess.Popen(
        ["bash", "-c", command], cwd=clone, env=env, text=True, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + TIMEOUT
        url = None
        assert process.stdout is not None
        while url is None and time.monotonic() < deadline and process.poll() is None:
            if select.select([process.stdout], [], [], 0.5)[0]:
                line = process.stdout.readline()
                output.append(line)
                found = re.search(r"listening on (http://127\.0\.0\.1:\d+) ", line)
                url = found.group(1) if found else None
        assert url == f"http://127.0.0.1:{port}", "".join(output)
        response = httpx.post(f"{url}/webhooks/orders", json={"data": {"order": 1, "total": 9.5}}, timeout=30)
        assert response.status_code == 202, response.text
        assert len(response.json()["job_ids"]) == 2  # logger.log and warehouse.insert
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        try:
            rest, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            rest, _ = process.communicate()
        output.append(rest or "")
    log = "".join(output)
    assert process.returncode == 0, log
    project = clone / "my-pipeline"
    assert {"pipeline.py", "core.toml", "README.md"} <= {p.name for p in project.iterdir()}
    assert (project / ".core" / "core.db").is_file()  # one database, the project's own
    assert not (clone / ".core").exists() and not (clone / "core" / "scaffold" / "quickstart" / ".core").exists()
    assert str(clone / "core" / "__init__.py") in subprocess.run(
        [str(venv.python), "-c", "import core; print(core.__file__)"], capture_output=True, text=True, env=env,
        cwd=project,
    ).stdout  # the copy's core was installed and run, not this tree's


def test_core_init_twice_keeps_the_project(tmp_path: Path) -> None:
    """Pasting the README's command again finds the project written and starts it."""
    from click.testing import CliRunner

    target = tmp_path / "my-pipeline"
    assert CliRunner().invoke(main, ["init", str(target)]).exit_code == 0
    again = CliRunner().invoke(main, ["init", str(target)])
    assert again.exit_code == 0 and "already holds the quickstart pipeline" in again.stdout
    (target / "pipeline.py").write_text("# mine\n")
    changed = CliRunner().invoke(main, ["init", str(target)])
    assert changed.exit_code == 2 and "never overwrites" in changed.stderr


def test_start_refuses_core_s_own_template(monkeypatch: pytest.MonkeyPatch) -> None:
    """``cd <the quickstart template> && core start`` would write a database inside the package."""
    from click.testing import CliRunner

    monkeypatch.chdir(REPO / "core" / "scaffold" / "quickstart")
    result = CliRunner().invoke(main, ["start", "--port", "0"], env={"CORE_LOAD_PLUGINS": "", "CORE_ADMIN_PORT": "0"})
    assert result.exit_code == 2 and "core's template of the quickstart" in result.stderr
    assert "core init my-pipeline" in result.stderr
    assert not (REPO / "core" / "scaffold" / "quickstart" / ".core").exists()
