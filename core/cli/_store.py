"""Shared pieces of the commands that read or write the store (``core events``, ``core jobs``):
open the configured store without starting any service, parse times, print records.

These commands never create a store: a SQLite file that does not exist means the command runs
outside the project (or with the wrong ``--config``), which is said as such rather than
answered with an empty, freshly made database.

Lists are read page by page to the end (keyset paging, so each page is cheap), counting every
match and keeping the newest ``limit``: the table shows the newest first and says how many of
how many it shows.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import click
import orjson

from core.cli._common import Context, table
from core.errors import CoreError
from core.paging import SCAN_PAGE
from core.plugins import PluginHost
from core.timing import parse_moment
from hookspecs import Page, Store, redacted_url

T = TypeVar("T")


class _Paged(Protocol):
    """A ``WhereJob`` or ``WhereEvent``: a filter with a keyset page."""

    page: Page


W = TypeVar("W", bound=_Paged)


def refuse_missing_store(store: Store, url: str) -> None:
    """Raise :class:`CoreError` if ``store`` keeps a file (the SQLite store's ``path``) that does
    not exist: opening it would create an empty store where the user expected theirs."""
    path = getattr(store, "path", None)
    if isinstance(path, Path) and not path.exists():
        raise CoreError(
            f"no store at {path} (store = {redacted_url(url)!r}): run from your project or pass --config",
            hint="run this command in the directory of your core.toml, or give it: core --config PATH/core.toml ...",
        )


def with_store(ctx: Context, work: Callable[[Store], Awaitable[T]], host: PluginHost | None = None) -> T:
    """Open the configured store (plugins and app loaded, no service started), run ``work``, close.

    Never creates a store (:func:`refuse_missing_store`). ``host`` reuses a loaded host.
    """
    host = host or ctx.host()

    async def run() -> T:
        store: Store = host.create("store")
        refuse_missing_store(store, host.settings["store"])
        try:
            await store.open()
        except Exception as exc:
            raise CoreError(
                f"could not open the store at {redacted_url(host.settings['store'])!r}: {exc}",
                hint="check 'store' in your configuration (core config show) and that the server is running",
            ) from exc
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def parse_time(value: str | None, option: str) -> datetime | None:
    """``--after``/``--before``: :func:`~core.timing.parse_moment`, a bad value a usage error."""
    if value is None:
        return None
    try:
        return parse_moment(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def when(value: datetime | str | None) -> str:
    """A time for a table (a datetime, or ISO 8601 as the admin API sends it): UTC, to the
    second; ``-`` when empty."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def short(value: Any, width: int = 60) -> str:
    """A one-line, clipped rendering of a JSON value or an error text."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


async def newest(find: Callable[[W], Awaitable[list[T]]], where: W, limit: int,
                 keep: Callable[[T], bool] = lambda _: True) -> tuple[list[T], int]:
    """Read every match of ``where`` (``find`` orders by id, oldest first) and return the newest
    ``limit`` of those ``keep`` accepts, newest first, with how many matched in all."""
    last: deque[T] = deque(maxlen=limit)
    total, after = 0, where.page.after
    while True:
        page = await find(replace(where, page=Page(limit=SCAN_PAGE, after=after)))  # type: ignore[type-var]
        for item in page:
            if keep(item):
                total += 1
                last.append(item)
        if len(page) < SCAN_PAGE:
            return list(reversed(last)), total
        after = page[-1].id  # type: ignore[attr-defined]


def echo_listing(
    found: Sequence[Any], *, as_json: bool, what: str, headers: Sequence[str], row: Callable[[Any], Sequence[str]],
    total: int | None = None,
) -> None:
    """Print a list command's result: JSON, a "No … match." line, or an aligned table followed
    by "showing N of TOTAL" (the table holds the newest, newest first)."""
    if as_json:
        echo_json(found)
    elif not found:
        click.echo(f"No {what} match.")
    else:
        click.echo(table(headers, [row(item) for item in found]))
        total = len(found) if total is None else total
        more = " (use --limit N for more, --after/--before for a time range)" if total > len(found) else ""
        click.echo(f"showing {len(found)} of {total} {what}, newest first{more}")


def echo_json(value: Any) -> None:
    """Print dataclasses, lists of them, datetimes and statuses as indented JSON."""
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z).decode())
