"""Realtime delivery through NATS JetStream: gateway -> NATS -> scheduler, separate processes.

    python bench/realtime_nats.py [--rate 1000] [--seconds 10] [--connections 32] [--url nats://127.0.0.1:4222]

Needs ``core-plugin-nats`` installed and a NATS server with JetStream. Runs
:mod:`realtime_broker` with a fresh subject prefix (its own stream), deleted afterwards.
Target on 2 cores: p99 from ``202`` to ``load`` under 50 ms at 1,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets

import nats
from nats.js.errors import NotFoundError
from realtime_broker import run


async def _delete_stream(url: str, stream: str) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().delete_stream(stream)
    except NotFoundError:
        pass
    finally:
        await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="nats://127.0.0.1:4222", help="the NATS server")
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second offered")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to offer them")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections of the load generator")
    parser.add_argument("--store", default="sqlite:///core.db", help="the store URL (default: SQLite, temporary)")
    args = parser.parse_args()
    prefix = f"bench_{secrets.token_hex(4)}"
    try:
        run(f"{args.url}?prefix={prefix}", args.rate, args.seconds, args.connections, args.store)
    finally:
        asyncio.run(_delete_stream(args.url, prefix.upper()))


if __name__ == "__main__":
    main()
