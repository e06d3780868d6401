"""Realtime delivery through RabbitMQ: gateway -> RabbitMQ -> scheduler, separate processes.

    python bench/realtime_rabbitmq.py [--rate 1000] [--seconds 10] [--connections 32] [--url amqp://guest:guest@127.0.0.1:5672/]

Needs ``core-plugin-rabbitmq`` installed and a RabbitMQ broker. Runs :mod:`realtime_broker`
with a fresh exchange; its queues and the exchange are deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets

import aio_pika
from realtime_broker import run

#: The queues the benchmark's scheduler and gateway declare (group core.scheduler, and its dead letters).
QUEUES = ("{exchange}:core.jobs:core.scheduler", "{exchange}:dead.core.jobs:dead-letters")


async def _delete(url: str, exchange: str) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        for queue in QUEUES:
            await channel.queue_delete(queue.format(exchange=exchange))
        await channel.exchange_delete(exchange)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/", help="the RabbitMQ broker")
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second offered")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to offer them")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections of the load generator")
    parser.add_argument("--store", default="sqlite:///core.db", help="the store URL (default: SQLite, temporary)")
    args = parser.parse_args()
    exchange = f"bench_{secrets.token_hex(4)}"
    try:
        run(f"{args.url}?exchange={exchange}", args.rate, args.seconds, args.connections, args.store)
    finally:
        asyncio.run(_delete(args.url, exchange))


if __name__ == "__main__":
    main()
