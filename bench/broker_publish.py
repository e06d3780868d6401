"""What the broker base costs a publish: the adapter beside its SDK alone, in the same run.

    python bench/broker_publish.py [--messages 20000] [--batch 100] [--brokers memory,nats,rabbitmq]

For each broker, ``--messages`` messages are published in batches of ``--batch`` and confirmed,
first through the SDK directly (the raw baseline: the same confirms, no adapter), then through
the adapter (``core.brokers`` base plus the plugin). NATS and RabbitMQ need their servers on
127.0.0.1 (skipped with a note when one is not installed or not running). The memory broker has
no SDK: its baseline is an ``asyncio.Queue`` with a consumer task (the least an in-process
broker does). Prints messages per second of each and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable

from core.builtin.memory.pubsub import MemoryPubSub
from hookspecs import Message, PubSub

Batch = list[Message]


async def _rate(publish: Callable[[Batch], Awaitable[object]], messages: int, batch: int) -> float:
    payload = [Message(b'{"event": "x"}', {"type": "bench"}) for _ in range(batch)]
    await publish(payload)  # warm up: connections, streams, queues
    started = time.perf_counter()
    for _ in range(messages // batch):
        await publish(payload)
    return (messages // batch) * batch / (time.perf_counter() - started)


async def _memory(messages: int, batch: int) -> tuple[float, float]:
    queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=10_000)

    async def raw(payload: Batch) -> None:
        for message in payload:
            await queue.put(message)

    async def consume() -> None:
        while True:
            await queue.get()

    consumer = asyncio.create_task(consume())
    adapter = MemoryPubSub("memory://bench")
    await adapter.open()
    member = await adapter.subscribe("bench", group="g")

    async def drain() -> None:
        async for delivery in member:
            await delivery.ack()

    task = asyncio.create_task(drain())
    try:
        return await _rate(raw, messages, batch), await _rate(lambda p: adapter.publish("bench", p), messages, batch)
    finally:
        task.cancel()
        consumer.cancel()
        await adapter.close()


async def _nats(messages: int, batch: int) -> tuple[float, float]:
    import nats
    from core_plugin_nats.pubsub import NatsPubSub

    prefix = f"bench_{secrets.token_hex(4)}"
    adapter: PubSub = NatsPubSub(f"nats://127.0.0.1:4222?prefix={prefix}&retention=limits")
    await adapter.open()
    nc = await nats.connect("nats://127.0.0.1:4222")
    js = nc.jetstream()

    async def raw(payload: Batch) -> None:
        await asyncio.gather(*(js.publish(f"{prefix}.raw", m.body, headers=dict(m.attributes)) for m in payload))

    try:
        return await _rate(raw, messages, batch), await _rate(lambda p: adapter.publish("bench", p), messages, batch)
    finally:
        await js.delete_stream(prefix.upper())
        await nc.close()
        await adapter.close()


async def _rabbitmq(messages: int, batch: int) -> tuple[float, float]:
    import aio_pika
    from core_plugin_rabbitmq.pubsub import RabbitPubSub

    exchange_name = f"bench_{secrets.token_hex(4)}"
    adapter: PubSub = RabbitPubSub(f"amqp://guest:guest@127.0.0.1:5672/?exchange={exchange_name}")
    await adapter.open()
    connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)

    async def raw(payload: Batch) -> None:
        await asyncio.gather(*(
            exchange.publish(aio_pika.Message(m.body, headers=dict(m.attributes)), "raw") for m in payload
        ))

    try:
        return await _rate(raw, messages, batch), await _rate(lambda p: adapter.publish("bench", p), messages, batch)
    finally:
        await exchange.delete()
        await connection.close()
        await adapter.close()


BROKERS = {"memory": _memory, "nats": _nats, "rabbitmq": _rabbitmq}


async def main(messages: int, batch: int, brokers: list[str]) -> None:
    print(f"{'broker':<10} {'SDK alone (msg/s)':>18} {'adapter (msg/s)':>16} {'adapter/SDK':>12}")
    for name in brokers:
        try:
            raw, adapter = await BROKERS[name](messages, batch)
        except (ImportError, OSError) as exc:
            print(f"{name:<10} not run: {exc!r}")
            continue
        print(f"{name:<10} {raw:>18,.0f} {adapter:>16,.0f} {adapter / raw:>12.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000, help="messages per measurement")
    parser.add_argument("--batch", type=int, default=100, help="messages per publish call")
    parser.add_argument("--brokers", default="memory,nats,rabbitmq", help="comma-separated: memory, nats, rabbitmq")
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.batch, args.brokers.split(",")))
