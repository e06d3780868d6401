"""Shared pieces of the commands that read or write the store (``core events``, ``core jobs``):
open the configured store without starting any service, parse times, print records."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click
import orjson

from core.cli._common import Context, table
from core.errors import CoreError
from core.timing import parse_duration
from hookspecs import Store

T = TypeVar("T")


def with_store(ctx: Context, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the configured store (plugins and app loaded, no service started), run ``work``, close."""
    host = ctx.host()

    async def run() -> T:
        store: Store = host.create("store")
        try:
            await store.open()
        except Exception as exc:
            raise CoreError(
                f"could not open the store at {host.settings['store']!r}: {exc}",
                hint="check 'store' in your configuration (core config show) and that the server is running",
            ) from exc
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def parse_time(value: str | None, option: str) -> datetime | None:
    """``--after``/``--before``: an ISO 8601 time (UTC if no offset) or a duration ago (``90m``)."""
    if value is None:
        return None
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither an ISO 8601 time (2026-01-31T12:00:00Z) nor a duration ago (30m, 2h)",
            param_hint=option,
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def when(value: datetime | None) -> str:
    """A time for a table: UTC, to the second; ``-`` when empty."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def short(value: Any, width: int = 60) -> str:
    """A one-line, clipped rendering of a JSON value or an error text."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def echo_listing(
    found: Sequence[Any], *, as_json: bool, what: str, headers: Sequence[str], row: Callable[[Any], Sequence[str]]
) -> None:
    """Print a list command's result: JSON, a "No … match." line, or an aligned table."""
    if as_json:
        echo_json(found)
    elif not found:
        click.echo(f"No {what} match.")
    else:
        click.echo(table(headers, [row(item) for item in found]))


def echo_json(value: Any) -> None:
    """Print dataclasses, lists of them, datetimes and statuses as indented JSON."""
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z).decode())
