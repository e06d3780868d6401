"""The tests run against the etcd server that ``.ci/services.py etcd`` starts (or reuses)
on 127.0.0.1; its address is read from the file the script writes. Each test gets its own KV
prefix. No test is skipped when etcd is missing: the session fixture fails, loudly."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def etcd_address() -> str:
    """``host:port`` of the client URL (started by the project's service script)."""
    path = Path(os.environ.get("CORE_ETCD_FILE", ROOT / ".ci" / ".etcd-address"))
    done = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "services.py"), "etcd"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f".ci/services.py etcd failed:\n{done.stdout}{done.stderr}", pytrace=False)
    return path.read_text().strip()


@pytest.fixture
def etcd_url(etcd_address: str) -> str:
    """The supervisor URL with a KV prefix of this test alone."""
    return f"etcd://{etcd_address}?prefix=test-{secrets.token_hex(5)}/&node_ttl=5"
