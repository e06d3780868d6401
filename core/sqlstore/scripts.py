"""SQL scripts through SQLAlchemy: split a script into statements and run them in one
transaction where the database allows it.

PostgreSQL and SQLite run DDL inside a transaction, so a failing statement leaves the database
as it was. MariaDB and MySQL commit implicitly around every DDL statement (``CREATE``,
``ALTER``, ``DROP``…): there, only the data statements of a failed script are rolled back, and
:data:`TRANSACTIONAL_DDL` says so, for the messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from core.sqlstore.database import async_url

#: Does a dialect (SQLAlchemy's name) run DDL inside a transaction?
TRANSACTIONAL_DDL = {"postgresql": True, "sqlite": True, "mysql": False, "mariadb": False}

_TOKEN = re.compile(
    r"""(--[^\n]*)|(/\*.*?\*/)|('(?:[^']|'')*')|("(?:[^"]|"")*")|(\$([A-Za-z_]\w*|)\$.*?\$\6\$)|(;)|([^'"$;/-]+|.)""",
    re.DOTALL,
)


def split_statements(script: str) -> list[str]:
    """The statements of ``script``, split on ``;`` outside quotes, comments and dollar-quoted
    bodies (PostgreSQL functions); comment-only pieces are dropped."""
    statements: list[str] = []
    current: list[str] = []
    meaningful = False
    for match in _TOKEN.finditer(script):
        if match.group(7):  # ;
            if meaningful:
                statements.append("".join(current).strip())
            current, meaningful = [], False
            continue
        piece = match.group(0)
        if match.group(1) is None and match.group(2) is None and piece.strip():
            meaningful = True
        current.append(piece)
    if meaningful:
        statements.append("".join(current).strip())
    return statements


def transactional_ddl(dialect: str) -> bool:
    """Whether a failed script on ``dialect`` is rolled back whole (unknown dialects: assume not)."""
    return TRANSACTIONAL_DDL.get(dialect, False)


async def execute_script(
    conn: AsyncConnection, script: str | Sequence[str], params: Mapping[str, Any] | None = None
) -> None:
    """Run every statement of ``script`` on ``conn`` (the caller's transaction), binding
    ``params`` (``:name``) as parameters: values never become SQL text. Without ``params`` the
    statements go to the driver as written (a ``':30'`` in a literal is not taken for a parameter)."""
    statements = split_statements(script) if isinstance(script, str) else list(script)
    for statement in statements:
        if params:
            await conn.execute(text(statement), dict(params))
        else:
            await conn.exec_driver_sql(statement)


async def run_script(
    target: str | AsyncEngine, script: str, params: Mapping[str, Any] | None = None
) -> None:
    """Run ``script`` against a URL or engine in one transaction, committed at the end and rolled
    back on the first error (see :data:`TRANSACTIONAL_DDL` for what a rollback can undo)."""
    engine = create_async_engine(async_url(target)) if isinstance(target, str) else target
    try:
        async with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                # pysqlite commits around DDL by itself; take the transaction in hand.
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql("BEGIN")
                try:
                    await execute_script(conn, script, params)
                except BaseException:
                    await conn.exec_driver_sql("ROLLBACK")
                    raise
                await conn.exec_driver_sql("COMMIT")
                return
            async with conn.begin():
                await execute_script(conn, script, params)
    finally:
        if isinstance(target, str):
            await engine.dispose()
