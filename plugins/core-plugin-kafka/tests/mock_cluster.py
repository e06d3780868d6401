"""Holds a librdkafka mock cluster open so other processes can use it as a Kafka broker.

No Apache Kafka server can be installed on the test machines. The confluent-kafka wheel
bundles librdkafka, whose mock cluster speaks the real Kafka protocol on ephemeral
127.0.0.1 ports. This script creates one through the ``rd_kafka_mock_*`` C API (ctypes),
writes its bootstrap list (``host:port,host:port,...``) to stdout and to ``--write PATH``,
and keeps it alive until SIGTERM/SIGINT.

Fault injection, for tests of broker outages: SIGUSR1 takes every broker down (connections
dropped, new ones refused), SIGUSR2 brings them back up on the same ports.

Run: ``python tests/mock_cluster.py --brokers 3 --write .ci/.kafka-bootstrap``
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType


def _librdkafka() -> ctypes.CDLL:
    """The librdkafka shared library bundled in the confluent-kafka wheel."""
    import confluent_kafka

    site = Path(confluent_kafka.__file__).resolve().parent.parent
    found = sorted(glob.glob(str(site / "confluent_kafka.libs" / "librdkafka*.so*")))
    lib = ctypes.CDLL(found[0] if found else "librdkafka.so.1")
    voidp, c_int, c_char_p = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    signatures = {
        "rd_kafka_conf_new": (voidp, []),
        "rd_kafka_conf_set": (c_int, [voidp, c_char_p, c_char_p, c_char_p, ctypes.c_size_t]),
        "rd_kafka_new": (voidp, [c_int, voidp, c_char_p, ctypes.c_size_t]),
        "rd_kafka_destroy": (None, [voidp]),
        "rd_kafka_mock_cluster_new": (voidp, [voidp, c_int]),
        "rd_kafka_mock_cluster_destroy": (None, [voidp]),
        "rd_kafka_mock_cluster_bootstraps": (c_char_p, [voidp]),
        "rd_kafka_mock_broker_set_down": (c_int, [voidp, ctypes.c_int32]),
        "rd_kafka_mock_broker_set_up": (c_int, [voidp, ctypes.c_int32]),
        "rd_kafka_mock_group_initial_rebalance_delay_ms": (None, [voidp, ctypes.c_int32]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib


class MockCluster:
    """A librdkafka mock cluster of ``brokers`` brokers (ids 1..n) living in this process."""

    def __init__(self, brokers: int = 3, *, rebalance_delay_ms: int = 0) -> None:
        self._lib = _librdkafka()
        self.brokers = brokers
        errstr = ctypes.create_string_buffer(512)
        conf = self._lib.rd_kafka_conf_new()
        self._lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, len(errstr))
        self._handle = self._lib.rd_kafka_new(0, conf, errstr, len(errstr))  # 0: producer
        if not self._handle:
            raise RuntimeError(f"librdkafka: {errstr.value.decode()}")
        self._cluster = self._lib.rd_kafka_mock_cluster_new(self._handle, brokers)
        if not self._cluster:
            raise RuntimeError("librdkafka could not create a mock cluster")
        self._lib.rd_kafka_mock_group_initial_rebalance_delay_ms(self._cluster, rebalance_delay_ms)
        self.bootstrap = self._lib.rd_kafka_mock_cluster_bootstraps(self._cluster).decode()

    def set_up(self, up: bool) -> None:
        """Bring every broker up, or take every broker down."""
        toggle = self._lib.rd_kafka_mock_broker_set_up if up else self._lib.rd_kafka_mock_broker_set_down
        for broker_id in range(1, self.brokers + 1):
            toggle(self._cluster, broker_id)

    def close(self) -> None:
        self._lib.rd_kafka_mock_cluster_destroy(self._cluster)
        self._lib.rd_kafka_destroy(self._handle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", type=int, default=3, help="number of brokers (default 3)")
    parser.add_argument("--write", type=Path, help="also write the bootstrap list to this file")
    parser.add_argument(
        "--rebalance-delay-ms", type=int, default=0,
        help="group.initial.rebalance.delay.ms of the mock coordinator (librdkafka's default: 3000)",
    )
    args = parser.parse_args(argv)
    cluster = MockCluster(args.brokers, rebalance_delay_ms=args.rebalance_delay_ms)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if signum in (signal.SIGUSR1, signal.SIGUSR2):
            cluster.set_up(signum == signal.SIGUSR2)
        else:
            stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, on_signal)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.write.with_name(args.write.name + f".{os.getpid()}.tmp")
        tmp.write_text(cluster.bootstrap + "\n")
        tmp.replace(args.write)
    print(cluster.bootstrap, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        if args.write and args.write.exists() and args.write.read_text().strip() == cluster.bootstrap:
            args.write.unlink()
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
