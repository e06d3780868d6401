"""Each test gets its own PostgreSQL database, created before and dropped after it.

The server is ``CORE_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``,
trust auth). No test is skipped when it is down: the fixture fails, loudly.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

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
