"""Each test gets its own PostgreSQL database, created before and dropped after it.

The server is ``CORE_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``,
trust auth). No test is skipped when it is down: the fixture fails, loudly.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from core_plugin_postgres.store import PostgresStore

SERVER = os.environ.get("CORE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_url(name: str) -> str:
    """The server URL pointing at database ``name``."""
    parts = urlsplit(SERVER)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """The URL of a fresh database, dropped (its sessions terminated) after the test."""
    name = f"core_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(SERVER)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield database_url(name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    """An open store on the test's database."""
    adapter = PostgresStore(pg_url)
    await adapter.open()
    yield adapter
    await adapter.close()


@contextmanager
def core_processes(commands: Sequence[Sequence[str]], envs: Sequence[Mapping[str, str]], cwd: Path,
                   *, tail: int = 2000) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``core start <command>`` processes (one per command, each with its environment), their
    output in ``cwd/out<i>.txt``; stopped by SIGTERM after (killed past 20 s), the end of each
    output then written to stderr for a failing test's report."""
    procs = [
        subprocess.Popen([sys.executable, "-m", "core", "start", *command], env=dict(env), cwd=cwd,
                         stdout=(cwd / f"out{i}.txt").open("w"), stderr=subprocess.STDOUT)
        for i, (command, env) in enumerate(zip(commands, envs, strict=True))
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for i in range(len(procs)):
            sys.stderr.write((cwd / f"out{i}.txt").read_text()[-tail:])
