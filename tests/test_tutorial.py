"""docs/tutorial.md is followed as written, start to finish, on the real PostgreSQL and NATS.

The page is the script: its steps are HTML comments the site does not show, each before the
block it applies to, run in the page's order (so page and test cannot drift):

- ``<!-- tutorial: install -->``: the block runs as written, from the checkout, in a new
  virtualenv of the reader's, whose ``bin`` comes first on the PATH of every later step (so
  ``core`` and ``python`` are the ones the page installed);
- ``<!-- tutorial: run -->``: the block runs in bash, in the directory and with the exports the
  previous blocks left; ``until="TEXT"``: again each second until its output holds TEXT;
- ``<!-- tutorial: file PATH -->``: the block's ``--8<--`` include is written to PATH;
- ``<!-- tutorial: background NAME ready="TEXT" -->``: the block is started as a process of
  its own (a terminal of the reader's), awaited until its output holds TEXT;
- ``<!-- tutorial: expect NAME "TEXT" -->``: that process prints TEXT; ``stop NAME``: Ctrl-C.

The names the page uses for the shared services are made this test's own: database and NATS
prefix ``shop_tutorial`` and ports 9090, 9091 and 8765 are replaced by fresh ones, and the database
and the JetStream stream are dropped afterwards.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.testing import free_port
from tests.scratch import REPO

pytestmark = [pytest.mark.slow, pytest.mark.docs]

PAGE = REPO / "docs" / "tutorial.md"
STEP = re.compile(r"^<!-- tutorial: (?P<kind>\w+)(?P<args>[^\n]*?) -->\n(?:```\w*\n(?P<body>.*?)^```)?",
                  re.M | re.S)
INCLUDE = re.compile(r'^--8<-- "(?P<path>[^"]+)"$', re.M)
#: The longest wait for a block's ``until``, a process's ``ready`` or an ``expect``.
WAIT = 60.0


def attribute(args: str, name: str) -> str | None:
    found = re.search(rf'{name}="((?:[^"\\]|\\.)*)"', args)
    return found.group(1).replace('\\"', '"') if found else None


class Reader:
    """Someone following the page: one working directory and environment, a few terminals."""

    def __init__(self, home: Path, replacements: dict[str, str]) -> None:
        self.home = home
        self.replacements = replacements
        self.cwd = home
        self.state = home / ".tutorial-env"
        self.state.write_text("")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")}
        self.processes: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}

    def text(self, text: str) -> str:
        for old, new in self.replacements.items():
            text = text.replace(old, new)
        return text

    def install(self, block: str) -> None:
        """A newcomer's install: a new virtualenv, then the block's ``pip install`` lines run as
        written from the checkout (the page says to run them there)."""
        for line in block.splitlines():
            assert shlex.split(line)[:2] == ["pip", "install"], f"an install step runs pip install only: {line}"
        environment = self.home / "venv"
        venv.EnvBuilder(with_pip=True).create(environment)
        self.env["PATH"] = f"{environment / 'bin'}{os.pathsep}{self.env['PATH']}"
        self.env["VIRTUAL_ENV"] = str(environment)
        done = subprocess.run(["bash", "-c", f"set -e\n{block}"], cwd=REPO, env=self.env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (f"the install step failed (exit {done.returncode}):\n{block}\n"
                                      f"{done.stdout}{done.stderr}")

    def run(self, block: str, until: str | None) -> None:
        script = (f"set -e\n. {shlex.quote(str(self.state))}\ncd {shlex.quote(str(self.cwd))}\n"
                  f"{self.text(block)}\nexport -p > {shlex.quote(str(self.state))}\npwd > {self.home}/.tutorial-cwd\n")
        deadline = time.monotonic() + WAIT
        while True:
            done = subprocess.run(["bash", "-c", script], env=self.env, capture_output=True, text=True, timeout=120)
            output = done.stdout + done.stderr
            if done.returncode == 0 and (until is None or until in output):
                break
            if until is None or time.monotonic() > deadline:
                raise AssertionError(f"tutorial block failed (exit {done.returncode}):\n{block}\n{output}\n"
                                     f"{self.logs()}")
            time.sleep(1.0)
        self.cwd = Path((self.home / ".tutorial-cwd").read_text().strip())

    def start(self, name: str, block: str, ready: str) -> None:
        log = self.home / f".tutorial-{name}-{len(self.processes)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", f". {shlex.quote(str(self.state))}\nexec {self.text(block).strip()}"],
                cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.processes[name] = (process, log)
        self.expect(name, ready)

    def expect(self, name: str, text: str) -> None:
        process, log = self.processes[name]
        deadline = time.monotonic() + WAIT
        while text not in log.read_text(errors="replace"):
            assert process.poll() is None, f"{name} exited {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"{name} never printed {text!r}:\n{self.logs()}"
            time.sleep(0.2)

    def stop(self, name: str) -> None:
        process, log = self.processes.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes[f"{name} (stopped)"] = (process, log)

    def logs(self) -> str:
        return "\n".join(f"--- {name}:\n{log.read_text(errors='replace')[-3000:]}"
                         for name, (_, log) in self.processes.items())

    def close(self) -> None:
        for name in [n for n, (p, _) in self.processes.items() if p.poll() is None]:
            self.stop(name)


@pytest.fixture()
def names() -> Iterator[dict[str, str]]:
    """This run's own database, NATS prefix and ports; the database and stream dropped after."""
    own = f"tut_{secrets.token_hex(4)}"
    yield {"shop_tutorial": own, "9090": str(free_port()), "9091": str(free_port()), "8765": str(free_port())}
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", own],
                   check=False, capture_output=True, timeout=60)
    subprocess.run([sys.executable, "-c", _DELETE_STREAM, own.upper()], check=False, capture_output=True, timeout=60)


_DELETE_STREAM = """
import asyncio, sys
import nats
async def main():
    nc = await nats.connect("nats://127.0.0.1:4222")
    try:
        await nc.jetstream().delete_stream(sys.argv[1])
    except Exception:
        pass
    await nc.close()
asyncio.run(main())
"""


def test_the_tutorial_runs_start_to_finish(tmp_path: Path, names: dict[str, str]) -> None:
    text = PAGE.read_text()
    steps = list(STEP.finditer(text))
    kinds = [step["kind"] for step in steps]
    assert kinds.count("run") >= 8 and "background" in kinds and "expect" in kinds, kinds
    unmarked = [m.start() for m in re.finditer(r"^```(?:sh|python|toml|sql)\n", text, re.M)
                if not text[:m.start()].rstrip("\n").splitlines()[-1].startswith("<!-- tutorial: ")]
    assert not unmarked, f"docs/tutorial.md: blocks no step runs (put a <!-- tutorial: … --> line before): {unmarked}"
    for step in steps:
        assert step["kind"] in ("expect", "stop") or step["body"], f"a step with no block after it: {step.group(0)}"
    reader = Reader(tmp_path, names)
    try:
        for step in steps:
            kind, args, body = step["kind"], step["args"], step["body"] or ""
            if kind == "install":
                reader.install(body)
            elif kind == "run":
                reader.run(body, attribute(args, "until"))
            elif kind == "file":
                target = reader.cwd / args.strip()
                target.parent.mkdir(parents=True, exist_ok=True)
                include = INCLUDE.search(body)
                assert include, f"tutorial file {args.strip()}: no --8<-- include"
                target.write_text(reader.text((REPO / "docs" / include["path"]).read_text()))
            elif kind == "background":
                name = args.split()[0]
                ready = attribute(args, "ready")
                assert ready, step.group(0)
                reader.start(name, body, ready)
            elif kind == "expect":
                name, quoted = args.split(maxsplit=1)
                reader.expect(name, quoted.strip().strip('"'))
            elif kind == "stop":
                reader.stop(args.strip())
            else:
                pytest.fail(f"unknown tutorial step {kind!r}")
        stopped = [(name, process.returncode) for name, (process, _) in reader.processes.items()
                   if name.startswith("core")]
        assert stopped == [("core (stopped)", 0)], reader.logs()
    finally:
        reader.close()
