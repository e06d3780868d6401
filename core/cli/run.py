"""``core run operation|query FILE``: run a SQL template against a SQL destination (a
:class:`~hookspecs.SQLWarehouse`, such as ``core-plugin-sql``'s), like Blacksmith's
``run operation`` / ``run query``.

The destination renders the file (values from ``--var`` become bound parameters, never SQL
text) between its ``init`` and ``shutdown``. An operation runs in one transaction; a query
prints its rows as a table, ``--json`` or ``--csv``. ``--dry-run`` prints the rendered SQL and
its parameters and runs nothing.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from core.cli._common import Context, friendly, pass_context, table
from core.errors import CoreError
from core.pipeline import Pipeline
from hookspecs import QueryResult, RenderedSQL, SQLWarehouse, Toolkit, new_id

T = TypeVar("T")


def _variables(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise CoreError(f"--var {pair!r} is not NAME=VALUE", hint="write it as --var since=2026-01-01")
        out[name] = value
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CoreError(f"cannot read {path}: {exc.strerror}", hint="give the path of a .sql file") from None


def _warehouse(ctx: Context, name: str | None) -> tuple[SQLWarehouse, Toolkit]:
    host = ctx.host()
    pipeline = Pipeline.from_host(host)
    warehouses = {n: d for n, d in pipeline.destinations.items() if isinstance(d, SQLWarehouse)}
    if name is None:
        if len(warehouses) != 1:
            raise CoreError(
                f"{'no' if not warehouses else len(warehouses)} SQL destinations are registered: name one",
                hint=f"pass --destination NAME (SQL destinations: {', '.join(sorted(warehouses)) or 'none'})",
            )
        name = next(iter(warehouses))
    found = pipeline.destinations.get(name)
    if found is None or not isinstance(found, SQLWarehouse):
        what = "is not a SQL destination" if found is not None else "is not registered"
        raise CoreError(f"destination {name!r} {what}",
                        hint=f"SQL destinations: {', '.join(sorted(warehouses)) or 'none'} (core-plugin-sql)")
    toolkit = Toolkit(logger=logging.getLogger(f"core.{name}"), node_id=new_id(), service="cli",
                      options=host.settings.section(name))
    return found, toolkit


def _with(ctx: Context, name: str | None, work: Callable[[SQLWarehouse], Awaitable[T]]) -> T:
    warehouse, toolkit = _warehouse(ctx, name)

    async def run() -> T:
        await warehouse.init(toolkit)
        try:
            return await work(warehouse)
        finally:
            await warehouse.shutdown(toolkit)

    return asyncio.run(run())


def _render(ctx: Context, name: str | None, file: Path, variables: Sequence[str]) -> RenderedSQL:
    text, values = _read(file), _variables(variables)

    async def work(warehouse: SQLWarehouse) -> RenderedSQL:
        return warehouse.render(text, values)

    return _with(ctx, name, work)


def _dry(rendered: RenderedSQL) -> None:
    click.echo(str(rendered))
    if rendered.params:
        click.echo("-- parameters: " + orjson.dumps(dict(rendered.params), default=str).decode())
    click.echo("-- dry run: nothing ran")


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


_destination = click.option("--destination", "destination", metavar="NAME",
                            help="The SQL destination to run against [default: the only one].")
_var = click.option("--var", "variables", multiple=True, metavar="NAME=VALUE",
                    help="A template variable, bound as a parameter (repeatable).")
_dry_run = click.option("--dry-run", is_flag=True, help="Print the rendered SQL and its parameters, run nothing.")
_file = click.argument("file", type=click.Path(path_type=Path))


@click.group("run")
def run_group() -> None:
    """Run SQL templates against a SQL destination."""


@run_group.command("operation")
@_file
@_destination
@_var
@_dry_run
@pass_context
@friendly
def operation(ctx: Context, file: Path, destination: str | None, variables: tuple[str, ...], dry_run: bool) -> None:
    """Run the statements of FILE in one transaction (rolled back whole on an error, where the
    database rolls DDL back)."""
    if dry_run:
        _dry(_render(ctx, destination, file, variables))
        return
    text, values = _read(file), _variables(variables)

    async def work(warehouse: SQLWarehouse) -> int:
        return await warehouse.run_operation(warehouse.render(text, values))

    changed = _with(ctx, destination, work)
    click.echo(f"ok: {file} ({changed if changed >= 0 else 'unknown'} row(s) changed)")


@run_group.command("query")
@_file
@_destination
@_var
@click.option("--json", "as_json", is_flag=True, help="Print the rows as a JSON list of objects.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the rows as CSV with a header line.")
@_dry_run
@pass_context
@friendly
def query(ctx: Context, file: Path, destination: str | None, variables: tuple[str, ...], as_json: bool,
          as_csv: bool, dry_run: bool) -> None:
    """Run the query of FILE and print its rows (a table by default)."""
    if as_json and as_csv:
        raise CoreError("--json and --csv cannot be used together", hint="pick one output format")
    if dry_run:
        _dry(_render(ctx, destination, file, variables))
        return
    text, values = _read(file), _variables(variables)

    async def work(warehouse: SQLWarehouse) -> QueryResult:
        return await warehouse.run_query(warehouse.render(text, values))

    result = _with(ctx, destination, work)
    rows = [[_cell(v) for v in row] for row in result.rows]
    if as_json:
        records = [dict(zip(result.columns, row, strict=True)) for row in rows]
        click.echo(orjson.dumps(records, option=orjson.OPT_INDENT_2, default=str).decode())
    elif as_csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows(rows)
        click.echo(out.getvalue(), nl=False)
    elif not rows:
        click.echo("No rows.")
    else:
        click.echo(table(list(result.columns), [["NULL" if v is None else str(v) for v in row] for row in rows]))
