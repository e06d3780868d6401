"""A holder process frozen with SIGSTOP past its lease wakes up fenced: its lease is no longer
current, cannot be renewed, and releasing it leaves the new holder's alone."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

from core_plugin_etcd.supervisor import EtcdSupervisor

TTL = 2  # the shortest TTL the server grants

#: The holder: takes the lease, prints its token, then on each input line prints whether the
#: lease is current and whether a renew and a release go through.
HOLDER = """
import asyncio, sys
from core_plugin_etcd.supervisor import EtcdSupervisor

async def main() -> None:
    sup = EtcdSupervisor(sys.argv[1])
    await sup.open()
    lease = await sup.acquire("frozen", owner="sleeper", ttl=2)
    print(lease.token, flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    current = await sup.is_current(lease)
    renewed = await sup.renew(lease, ttl=2)
    await sup.release(lease)
    print(current, renewed is not None, flush=True)
    await sup.close()

asyncio.run(main())
"""


async def test_a_frozen_holder_wakes_up_fenced(etcd_url: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, etcd_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        stale_token = int(await asyncio.to_thread(holder.stdout.readline))
        os.kill(holder.pid, signal.SIGSTOP)
        waker = EtcdSupervisor(etcd_url)
        await waker.open()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 4 * TTL + 15
            while (fresh := await waker.acquire("frozen", owner="waker", ttl=60)) is None:
                assert loop.time() < deadline, "the frozen holder's lease never lapsed"
                await asyncio.sleep(TTL / 4)
            assert fresh.token > stale_token
            os.kill(holder.pid, signal.SIGCONT)
            holder.stdin.write("wake\n")
            holder.stdin.flush()
            answer = (await asyncio.to_thread(holder.stdout.readline)).split()
            assert answer == ["False", "False"], f"the woken holder saw current, renewed = {answer}"
            assert await waker.is_current(fresh), "the woken holder's release freed the new holder's lease"
        finally:
            await waker.close()
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:  # a failed test: wake it and stop it
            os.kill(holder.pid, signal.SIGCONT)
            holder.kill()
            holder.wait()
