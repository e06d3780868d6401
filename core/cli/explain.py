"""``core explain --source S --trigger T FILE``: which jobs an event would create (the flows it
takes, each job's destination, action, version and the marshal's output), storing nothing: the
``POST /admin/api/explain`` route run in-process. No adapter is opened, so it needs no store."""

from __future__ import annotations

import asyncio
import sys
from typing import IO, Any

import click
import orjson

from core.cli._common import Context, friendly, pass_context, table
from core.cli._store import echo_json, short
from core.errors import CoreError


def _event(file: IO[bytes], data_only: bool) -> dict[str, Any]:
    """The event FILE holds: ``{name?, context?, data}``, or (``--data``) its data alone."""
    try:
        value = orjson.loads(file.read())
    except orjson.JSONDecodeError as exc:
        raise CoreError(f"{file.name}: not JSON: {exc}", hint='e.g. {"name": "track", "data": {"order": 1}}') from None
    if data_only:
        return {"data": value}
    if not isinstance(value, dict) or not set(value) <= {"name", "context", "data"}:
        raise CoreError(
            f"{file.name}: not an event object {{name?, context?, data}}",
            hint="pass --data if the file is the event's data (the payload) alone",
        )
    return value


@click.command("explain")
@click.option("--source", required=True, help="The source the event comes from.")
@click.option("--trigger", required=True, help="The trigger of that source receiving it.")
@click.option("--data", "data_only", is_flag=True, help="FILE is the event's data alone (a payload as sent).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.argument("file", type=click.File("rb"))
@pass_context
@friendly
def explain(ctx: Context, source: str, trigger: str, data_only: bool, as_json: bool, file: IO[bytes]) -> None:
    """Show which jobs the event in FILE (JSON {name?, context?, data}; - for stdin) would create:
    the flows it takes and, per job, its action and what the marshal made. Stores nothing.
    Exits 1 if a transform or marshal failed."""
    from core.admin.local import call_route
    from core.admin.write import explain as explain_route
    from core.pipeline import Pipeline
    from core.runtime import Runtime

    body = {"source": source, "trigger": trigger, "event": _event(file, data_only)}
    settings = ctx.settings()
    host = ctx.host()
    host.registry.check()
    runtime = Runtime(settings, host, Pipeline.from_host(host))  # never opened: nothing is stored
    done = asyncio.run(call_route(explain_route, runtime, body))
    if as_json:
        echo_json(done)
    else:
        _show(done)
    if done["errors"]:
        sys.exit(1)


def _show(done: dict[str, Any]) -> None:
    if not done["flows"]:
        click.echo("No flow takes this event: it would be stored without jobs.")
        return
    click.echo(f"flows: {', '.join(done['flows'])}")
    rows = [
        (f"{j.destination}.{j.action}", j.version or "-", short(j.context, 40), short(j.data, 80))
        for j in done["jobs"]
    ]
    click.echo(table(("ACTION", "VERSION", "CONTEXT", "DATA"), rows) if rows else "No jobs: every marshal skipped it.")
    for error in done["errors"]:
        click.secho(f"{error['flow']} -> {error['action']}: {error['error']}", fg="red", err=True)
