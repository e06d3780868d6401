"""The official Google Pub/Sub emulator, as a process of our own: found under the Google Cloud
CLI's root, started on 127.0.0.1, stopped and started again on the same port.

Standard library only: ``.ci/services.py`` runs it before anything is installed
(``python emulator.py --port 8085 --detach``). A missing emulator fails loudly, naming the
Debian package that brings it.
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
from pathlib import Path

HOST = "127.0.0.1"
RELATIVE = Path("platform/pubsub-emulator/bin/cloud-pubsub-emulator")
#: What the emulator logs once it serves.
READY = "Server started"


class EmulatorError(RuntimeError):
    """The emulator is missing or did not start; the message says why."""


def emulator_binary() -> Path:
    """The emulator's start script under ``gcloud info --format='value(installation.sdk_root)'``."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise EmulatorError("the Google Cloud CLI (gcloud) is not installed: apt-get install "
                            "google-cloud-cli google-cloud-cli-pubsub-emulator")
    done = subprocess.run([gcloud, "info", "--format=value(installation.sdk_root)"],
                          capture_output=True, text=True, check=False, timeout=60)
    root = done.stdout.strip()
    binary = Path(root) / RELATIVE
    if done.returncode != 0 or not root or not binary.is_file():
        raise EmulatorError(f"no Pub/Sub emulator at {binary} (gcloud said {done.stderr.strip()[-300:]!r}): "
                            "apt-get install google-cloud-cli-pubsub-emulator")
    return binary


def answers(port: int, host: str = HOST) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class Emulator:
    """One emulator process on ``port``, logging to ``log``; it keeps nothing across a restart."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.binary = emulator_binary()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """``host:port``, as ``PUBSUB_EMULATOR_HOST`` takes it."""
        return f"{HOST}:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        """Start it and wait for "Server started" in its log (and the port)."""
        if answers(self.port):
            raise EmulatorError(f"port {self.port} of {HOST} is taken: choose another")
        start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(self.binary), f"--host={HOST}", f"--port={self.port}"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not (READY in self.log.read_text(errors="replace")[start:] and answers(self.port)):
            if self.process.poll() is not None:
                raise EmulatorError(f"the emulator exited with {self.process.returncode}; see {self.log}")
            if time.monotonic() > deadline:
                self.stop()
                raise EmulatorError(f"the emulator did not say {READY!r} within {timeout:.0f}s; see {self.log}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop it (its process group: the JVM), and wait for the port to close."""
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
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--log", type=Path, default=Path("pubsub-emulator.log"))
    args = parser.parse_args()
    try:
        Emulator(args.port, args.log).start()
    except EmulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"google: Pub/Sub emulator running on {HOST}:{args.port} (log: {args.log})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
