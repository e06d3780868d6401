"""Realtime delivery through Azure Service Bus: gateway -> Service Bus -> scheduler, separate processes.

    python bench/realtime_azure.py [--rate 1000] [--seconds 10] [--connections 32]

Needs ``core-plugin-azure`` installed (with its ``test`` extra: python-qpid-proton). No Service
Bus emulator runs here, so it starts OUR stand-in (``plugins/core-plugin-azure/tests/standin.py``)
on a free port, runs :mod:`realtime_broker` with a fresh topic prefix, and stops it. Then, as the
same-run baseline, it measures the SDK alone against the same stand-in (no adapter, no core):
one sender publishing single messages at ``--rate``, one peek-lock receiver completing them,
latency from send to receipt. The figures are the stand-in's, not Azure's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

from realtime_broker import run

TESTS = Path(__file__).resolve().parent.parent / "plugins" / "core-plugin-azure" / "tests"
#: Not a CORE_* name: the bench's processes get the caller's environment minus those.
VARIABLE = "AZURE_SERVICEBUS_BENCH"


async def _baseline(connection: str, rate: float, seconds: float) -> None:
    from azure.servicebus import ServiceBusMessage
    from azure.servicebus.aio import ServiceBusClient

    topic = f"baseline_{secrets.token_hex(4)}"
    client = ServiceBusClient.from_connection_string(connection, retry_total=0)
    receiver = client.get_subscription_receiver(topic, "bench", socket_timeout=0.02)
    await receiver.__aenter__()
    receiver._further_pull_receive_timeout = 0.01  # as the adapter does
    sender = client.get_topic_sender(topic)
    await sender.__aenter__()
    total = int(rate * seconds)
    sent: dict[str, float] = {}
    waits: list[float] = []

    async def send() -> None:
        begin = time.monotonic()
        for n in range(total):
            delay = begin + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[str(n)] = time.monotonic()
            await sender.send_messages(ServiceBusMessage(str(n).encode()))

    async def receive() -> None:
        while len(waits) < total:
            batch = await receiver.receive_messages(max_message_count=100, max_wait_time=1)
            now = time.monotonic()
            for message in batch:
                waits.append((now - sent[b"".join(message.body).decode()]) * 1000)
            await asyncio.gather(*(receiver.complete_message(m) for m in batch))

    began = time.monotonic()
    await asyncio.wait_for(asyncio.gather(send(), receive()), seconds * 4 + 30)
    span = time.monotonic() - began
    waits.sort()
    pick = lambda p: waits[min(len(waits) - 1, int(p / 100 * len(waits)))]  # noqa: E731
    print(f"baseline, the SDK alone on the same stand-in (one sender awaiting each send, one receiver): "
          f"{len(waits):,} messages ({len(waits) / span:,.0f}/s); send -> receive ms: p50 {pick(50):.1f}  "
          f"p90 {pick(90):.1f}  p99 {pick(99):.1f}  max {waits[-1]:.1f}")
    await sender.close()
    await receiver.close()
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second offered")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to offer them")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections of the load generator")
    parser.add_argument("--store", default="sqlite:///core.db", help="the store URL (default: SQLite, temporary)")
    args = parser.parse_args()
    sys.path.insert(0, str(TESTS))
    from _harness import free_port
    from standin import StandIn

    with tempfile.TemporaryDirectory(prefix="core-bench-azure-") as tmp:
        standin = StandIn(free_port(), Path(tmp))
        standin.start()
        try:
            os.environ[VARIABLE] = standin.connection_string
            url = f"azure://?connection_string_env={VARIABLE}&prefix=bench_{secrets.token_hex(4)}"
            run(url, args.rate, args.seconds, args.connections, args.store)
            asyncio.run(_baseline(standin.connection_string, args.rate, args.seconds))
        finally:
            standin.stop()


if __name__ == "__main__":
    main()
