#!/usr/bin/env python3
"""Check that a test session left the machine as it found it.

    python .ci/leftovers.py snapshot BEFORE.json          # before the session
    python .ci/leftovers.py check BEFORE.json --mark M    # after it: exit 1 naming what changed

``snapshot`` records who serves each shared service (PostgreSQL, Redis, RabbitMQ, NATS, MariaDB,
Mosquitto on their 127.0.0.1 ports): the process listening on its port, that process's start
time and the listening socket itself (a new socket means the service was stopped and started
again, even in the same process, as ``rabbitmqctl stop_app`` / ``start_app`` do), plus what the
service says of itself where that is cheap to ask (PostgreSQL's ``pg_postmaster_start_time()``,
Redis's ``run_id``). ``check`` takes the same snapshot again and reports every service that
was restarted, replaced or stopped.

It also finds the processes the session left running. The noxfile puts ``MARK=<m>:tests`` in
the environment of the tests and ``MARK=<m>:services`` in that of ``.ci/services.py``; every
process they start inherits it (``/proc/<pid>/environ``), however it detaches. ``check`` stops
every process still carrying the mark: those of ``:services`` are the session's helpers (the
Kafka mock cluster, the Pub/Sub emulator), stopped quietly; those of ``:tests`` are leaks,
stopped and reported. Machine services that ``.ci/services.py`` starts for good run without
the mark. Standard library only; Linux (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
#: The environment variable that marks a session's processes (not ``CORE_*``: the test kit's
#: ``Deployment`` removes those from the processes it starts).
MARK = "CI_SESSION_MARK"
#: The shared services of the machine and their ports.
SHARED: dict[str, int] = {
    "postgresql": 5432, "redis": 6379, "rabbitmq": 5672, "nats": 4222, "mariadb": 3306, "mosquitto": 1883,
}
#: Daemons started on demand and shared by everything on the machine: not a session's leak.
#: (epmd, Erlang's port mapper, is started by the first Erlang node and serves them all.)
SHARED_DAEMONS = frozenset({"epmd"})
STOP_SECONDS = 10.0


@dataclass
class Listener:
    """Who serves a port: the listening socket's inode, its process, that process's start."""

    port: int
    inodes: list[int]
    pid: int | None = None
    started: float | None = None
    command: str = ""
    says: str = ""


# --- /proc ---------------------------------------------------------------------------------


def _listening_inodes(port: int) -> list[int]:
    """Inodes of the TCP sockets listening on ``port`` (any address, IPv4 or IPv6)."""
    inodes = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
                inodes.append(int(fields[9]))
    return sorted(inodes)


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _socket_owners(inodes: set[int]) -> dict[int, int]:
    """inode -> pid of a process holding that socket (the lowest pid: a server's parent)."""
    owners: dict[int, int] = {}
    for pid in sorted(_pids()):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in inodes:
                    owners.setdefault(inode, pid)
    return owners


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


def process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    ticks = int(stat.rpartition(")")[2].split()[19])
    return round(_boot_time() + ticks / os.sysconf("SC_CLK_TCK"), 2)


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def marked(mark: str) -> dict[int, str]:
    """pid -> the value of ``MARK`` for every live process whose environment holds ``<mark>:…``."""
    prefix = f"{MARK}={mark}:".encode()
    found = {}
    for pid in _pids():
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        for entry in environ.split(b"\0"):
            if entry.startswith(prefix):
                found[pid] = entry.split(b"=", 1)[1].decode(errors="replace")
                break
    return found


# --- what the services say -----------------------------------------------------------------


def _postgresql(port: int) -> str:
    psql = shutil.which("psql")
    if psql is None:
        return ""
    done = subprocess.run(
        [psql, "-h", HOST, "-p", str(port), "-U", "postgres", "-d", "postgres", "-Atw", "-c",
         "SELECT pg_postmaster_start_time()"],
        capture_output=True, text=True, timeout=10, check=False,
    )
    return f"postmaster started {done.stdout.strip()}" if done.returncode == 0 else ""


def _redis(port: int) -> str:
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            sock.sendall(b"INFO server\r\n")
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return ""
    run_id = next((line.split(":", 1)[1] for line in data.decode(errors="replace").splitlines()
                   if line.startswith("run_id:")), "")
    return f"run_id {run_id}" if run_id else ""


#: service -> a function asking it who it is (an empty answer: it could not be asked).
PROBES: dict[str, Callable[[int], str]] = {"postgresql": _postgresql, "redis": _redis}


# --- snapshot and check --------------------------------------------------------------------


def snapshot(ports: dict[str, int]) -> dict[str, Listener]:
    """Who serves each of ``ports`` now (services nothing listens on are left out)."""
    inodes = {name: _listening_inodes(port) for name, port in ports.items()}
    owners = _socket_owners({inode for found in inodes.values() for inode in found})
    taken: dict[str, Listener] = {}
    for name, port in ports.items():
        if not inodes[name]:
            continue
        pid = next((owners[inode] for inode in inodes[name] if inode in owners), None)
        listener = Listener(port, inodes[name])
        if pid is not None:
            listener.pid, listener.started, listener.command = pid, process_start(pid), command_line(pid)[:200]
        probe = PROBES.get(name)
        listener.says = probe(port) if probe else ""
        taken[name] = listener
    return taken


def _when(started: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(started)) if started else "?"


def compare(before: dict[str, Listener], after: dict[str, Listener]) -> list[str]:
    """What changed, one sentence per service."""
    problems = []
    for name, old in before.items():
        where = f"{name} on {HOST}:{old.port}"
        new = after.get(name)
        if new is None:
            problems.append(f"{where} no longer answers: it was stopped (served by pid {old.pid}, "
                            f"{old.command!r}). Restart it as /work/shared/SERVICES.md says.")
        elif (old.pid, old.started) != (new.pid, new.started):
            problems.append(f"{where} was restarted: pid {old.pid} started {_when(old.started)} before, "
                            f"pid {new.pid} started {_when(new.started)} now")
        elif old.says and new.says and old.says != new.says:
            problems.append(f"{where} was restarted: {old.says!r} before, {new.says!r} now")
        elif not set(old.inodes) & set(new.inodes):
            problems.append(f"{where} was stopped and started again inside its process (pid {old.pid}): "
                            "its listening socket is a new one (rabbitmqctl stop_app/start_app does that)")
    return problems


def stop(pids: Iterable[int], seconds: float = STOP_SECONDS) -> list[int]:
    """SIGTERM each process (its whole group when it leads one, never ours), then SIGKILL what
    is left after ``seconds``; the pids that would not die."""
    pids = list(pids)
    ours = os.getpgrp()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                if os.getpgid(pid) == pid and pid != ours:
                    os.killpg(pid, sig)
                else:
                    os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + seconds
        while (pids := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not pids:
            break
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def check(before: dict[str, Listener], mark: str | None, ports: dict[str, int]) -> list[str]:
    """Stop the session's processes, compare the services with ``before``; the problems found."""
    problems = []
    if mark:
        found = {pid: value for pid, value in marked(mark).items() if _name(pid) not in SHARED_DAEMONS}
        helpers = [pid for pid, value in found.items() if value.endswith(":services")]
        leaks = {pid: (command_line(pid) or _name(pid), process_start(pid)) for pid in found if pid not in helpers}
        for pid in helpers:
            print(f"leftovers: stopping the session's service helper {pid} ({command_line(pid)[:120]})")
        for pid, (command, started) in leaks.items():
            problems.append(f"process {pid} ({command[:160]!r}, started {_when(started)}) was left running "
                            "by the tests: stopped now")
        for pid in stop([*helpers, *leaks]):
            problems.append(f"process {pid} ({command_line(pid)[:160]!r}) would not stop, even with SIGKILL")
    problems += compare(before, snapshot(ports))
    return problems


def _save(path: Path, taken: dict[str, Listener]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({name: asdict(listener) for name, listener in taken.items()}, indent=2) + "\n")


def _load(path: Path) -> dict[str, Listener]:
    data: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return {name: Listener(**fields) for name, fields in data.items()}


def _ports(pairs: Sequence[str] | None) -> dict[str, int]:
    if not pairs:
        return dict(SHARED)
    ports = {}
    for pair in pairs:
        name, _, port = pair.partition("=")
        ports[name] = int(port)
    return ports


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    take = commands.add_parser("snapshot", help="record who serves each shared service")
    take.add_argument("file", type=Path)
    verify = commands.add_parser("check", help="stop the session's processes; compare with a snapshot")
    verify.add_argument("file", type=Path)
    verify.add_argument("--mark", help=f"the session's {MARK} (without ':tests' / ':services')")
    for sub in (take, verify):
        sub.add_argument("--port", action="append", metavar="NAME=PORT",
                         help="a service to watch instead of the shared ones (repeatable)")
    args = parser.parse_args(argv)
    ports = _ports(args.port)
    if args.command == "snapshot":
        taken = snapshot(ports)
        _save(args.file, taken)
        print("leftovers: watching " + ", ".join(f"{name} (pid {listener.pid})" for name, listener in taken.items()))
        return 0
    problems = check(_load(args.file), args.mark, ports)
    if problems:
        print("error: the session did not leave the machine as it found it (a shared service's change "
              "may also come from something else that ran meanwhile; a leaked process is the session's):",
              file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print("leftovers: shared services unchanged, no process left running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
