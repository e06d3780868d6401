"""Each test gets its own PostgreSQL and MariaDB database, created before and dropped after it.

The servers are ``CORE_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``,
trust auth) and ``CORE_TEST_MARIADB`` (default ``mysql://core:core@127.0.0.1:3306/``, the account
``.ci/services.py mariadb`` creates). No test is skipped when one is down: the fixture fails.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiomysql
import asyncpg
import pytest
from sqlalchemy.engine import make_url

POSTGRES = os.environ.get("CORE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
MARIADB = os.environ.get("CORE_TEST_MARIADB", "mysql://core:core@127.0.0.1:3306/")


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database, dropped (its sessions terminated) after the test."""
    name = f"core_sql_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(POSTGRES)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def maria_url() -> AsyncIterator[str]:
    """A fresh MariaDB database, dropped after the test."""
    name = f"core_sql_{secrets.token_hex(6)}"
    url = make_url(MARIADB)
    conn = await aiomysql.connect(host=url.host or "127.0.0.1", port=url.port or 3306, user=url.username,
                                  password=url.password or "", autocommit=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"CREATE DATABASE `{name}`")
        yield url.set(database=name).render_as_string(hide_password=False)
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture(params=["postgresql", "mariadb", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each of the three databases in turn."""
    fixture = {"postgresql": "pg_url", "mariadb": "maria_url", "sqlite": "sqlite_url"}[request.param]
    url: str = request.getfixturevalue(fixture)
    return url
