"""A moto server (``moto_server`` of ``moto[server]``) as a process of our own: started on
127.0.0.1, stopped and started again on the same port (empty: moto keeps its state in memory).

Standard library only: ``.ci/services.py aws`` runs it too (``python moto_server.py --port 5000``,
which leaves the server running). A missing ``moto_server`` fails loudly, saying what to install.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"


class MotoError(RuntimeError):
    """moto server is missing or did not start; the message says why."""


def moto_binary() -> str:
    """``moto_server`` beside this interpreter, else on ``PATH``."""
    beside = Path(sys.executable).with_name("moto_server")
    found = str(beside) if beside.is_file() else shutil.which("moto_server")
    if found is None:
        raise MotoError(f"no moto_server for {sys.executable}: pip install 'moto[server]'")
    return found


def answers(port: int, host: str = HOST) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def is_moto(port: int, host: str = HOST) -> bool:
    """Whether a moto server answers on ``host:port`` (its dashboard API)."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/moto-api/data.json", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


class MotoServer:
    """One moto server process on ``port``, logging to ``log``; it keeps nothing across a restart."""

    def __init__(self, port: int, log: Path, binary: str = "") -> None:
        self.port = port
        self.log = log
        self.binary = binary or moto_binary()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The endpoint URL boto3 takes."""
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait until it answers."""
        if answers(self.port):
            raise MotoError(f"port {self.port} of {HOST} is taken: choose another")
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [self.binary, "-H", HOST, "-p", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not is_moto(self.port):
            if self.process.poll() is not None:
                raise MotoError(f"moto_server exited with {self.process.returncode}; see {self.log}")
            if time.monotonic() > deadline:
                self.stop()
                raise MotoError(f"moto_server did not answer within {timeout:.0f}s; see {self.log}")
            time.sleep(0.1)

    def reset(self) -> None:
        """Forget every topic and queue (``POST /moto-api/reset``)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        """Stop it (its process group), and wait for the port to close."""
        process, self.process = self.process, None
        if process is None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + 10
        while answers(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--log", type=Path, default=Path("moto-server.log"))
    args = parser.parse_args()
    if is_moto(args.port):
        print(f"aws: moto server already running on {HOST}:{args.port}")
        return 0
    try:
        MotoServer(args.port, args.log).start()
    except MotoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"aws: moto server running on {HOST}:{args.port} (log: {args.log})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
