"""Property 14 of the reliability battery: against a real gateway process, a body over
``gateway.max_body_bytes`` answers ``413``, a gzip bomb (a small body inflating to 512 MiB)
``413``, and a JSON document nested 100,000 deep ``400``, each within the client's timeout,
nothing stored, and the gateway's peak memory (``VmHWM`` of ``/proc/<pid>/status``) grows by
less than :data:`RSS_BOUND` over the three. Prints the peak RSS before and after."""

from __future__ import annotations

import zlib
from pathlib import Path

import httpx
import pytest

from core.testing.processes import Deployment
from tests.chaos_kit import INGEST_APP, figures  # noqa: F401 - the fixture

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120)]

#: The gateway's body limit in the test (the default), and how much its peak RSS may grow.
LIMIT, RSS_BOUND = 1 << 20, 64 << 20
#: What the gzip bomb inflates to.
BOMB = 512 << 20


def peak_rss(pid: int) -> int:
    """The process's peak resident set (``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes, gzipped (about a thousandth of it)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    return b"".join([*(packer.compress(chunk) for _ in range(size // len(chunk))), packer.flush()])


def test_an_oversized_body_a_gzip_bomb_and_deep_nesting_are_refused_with_bounded_memory(
    tmp_path: Path, figures  # noqa: F811 - the fixture
) -> None:
    bomb = gzip_bomb(BOMB)
    deep = b"[" * 100_000 + b"]" * 100_000
    cases = [
        ("a body over the limit", b'{"data": "' + b"x" * (2 * LIMIT) + b'"}', {}, 413),
        ("a gzip bomb", bomb, {"content-encoding": "gzip"}, 413),
        ("JSON nested 100,000 deep", deep, {}, 400),
    ]
    with Deployment(tmp_path, INGEST_APP, settings={"supervisor": "", "wanderer": ""}) as deploy:
        gateway = deploy.start("gateway")
        before = peak_rss(gateway.process.pid)
        took = []
        with httpx.Client(base_url=deploy.url, timeout=10) as client:
            for what, body, headers, status in cases:
                answer = client.post("/webhooks/orders", content=body,
                                     headers={"content-type": "application/json", **headers})
                assert answer.status_code == status, f"{what}: {answer.status_code} {answer.text[:200]}"
                assert "error" in answer.text, f"{what}: no error message: {answer.text[:200]}"
                took.append(f"{what} {answer.status_code} in {answer.elapsed.total_seconds():.3f}s")
        after = peak_rss(gateway.process.pid)
        assert deploy.jobs() == []
        assert "Traceback" not in gateway.output(), gateway.output()
    assert after - before < RSS_BOUND, f"peak RSS grew {(after - before) >> 20} MiB under the bad bodies"
    figures(f"gateway peak RSS {before / 2**20:.1f} MiB before, {after / 2**20:.1f} MiB after "
            f"(bound +{RSS_BOUND >> 20} MiB; bomb {len(bomb) >> 10} KiB -> {BOMB >> 20} MiB); " + "; ".join(took))
