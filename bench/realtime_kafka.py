"""Realtime delivery through Kafka: gateway -> Kafka -> scheduler, separate processes.

    python bench/realtime_kafka.py [--rate 1000] [--seconds 10] [--connections 32] [--bootstrap HOST:PORT,...]

Needs ``core-plugin-kafka`` installed. Without ``--bootstrap`` it uses the cluster named in
``$CORE_KAFKA_BOOTSTRAP_FILE`` (default ``.ci/.kafka-bootstrap``, written by
``.ci/services.py kafka``), else it starts a librdkafka mock cluster of its own for the run.
Runs :mod:`realtime_broker` with fresh topic and group prefixes (topics cannot be deleted on
the mock cluster; they vanish with it). The mock cluster is an in-memory broker in one
process: the figures measure the adapter and the pipeline, not a Kafka deployment's disks.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

from realtime_broker import run

ROOT = Path(__file__).resolve().parent.parent
HOLDER = ROOT / "plugins" / "core-plugin-kafka" / "tests" / "mock_cluster.py"
BOOTSTRAP_FILE = Path(os.environ.get("CORE_KAFKA_BOOTSTRAP_FILE", ROOT / ".ci" / ".kafka-bootstrap"))


def _shared_cluster() -> str | None:
    """The bootstrap list of the services script's cluster, if it answers."""
    if not BOOTSTRAP_FILE.is_file():
        return None
    bootstrap = BOOTSTRAP_FILE.read_text().strip()
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return bootstrap
    except (OSError, ValueError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="the brokers (default: the shared mock cluster, else one of its own)")
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second offered")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to offer them")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections of the load generator")
    parser.add_argument("--store", default="sqlite:///core.db", help="the store URL (default: SQLite, temporary)")
    parser.add_argument(
        "--fetch-wait-ms", type=int, default=100,
        help="fetch.wait.max.ms of the scheduler's consumer (default: the plugin's 100); the mock cluster "
             "holds an empty fetch this long even when data arrives, a real broker does not",
    )
    args = parser.parse_args()
    holder = None
    bootstrap = args.bootstrap or _shared_cluster()
    if bootstrap is None:
        holder = subprocess.Popen([sys.executable, str(HOLDER)], stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None
        bootstrap = holder.stdout.readline().strip()
    tag = secrets.token_hex(4)
    try:
        run(f"kafka://{bootstrap}?topic_prefix=bench.{tag}.&group_prefix=bench.{tag}."
            f"&config.fetch.wait.max.ms={args.fetch_wait_ms}",
            args.rate, args.seconds, args.connections, args.store)
    finally:
        if holder is not None:
            holder.terminate()
            holder.wait(10)


if __name__ == "__main__":
    main()
