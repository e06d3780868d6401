"""``core explain --source S --trigger T FILE``: which jobs an event would create (the flows it
takes, each job's destination, action, version and the marshal's output), storing nothing: the
``POST /admin/api/explain`` route run in-process. The store is opened only to read the disabled
flows, and only when it exists: without one no flow is disabled, and none is created. With
``--url`` (``CORE_ADMIN_URL``), the route of a running admin API is called instead, which knows
its pipeline and its store: nothing is opened here."""

from __future__ import annotations

import asyncio
import sys
from typing import IO, Any

import click
import orjson

from core.cli._admin_client import Remote, call_remote, remote_options
from core.cli._common import Context, friendly, pass_context, table
from core.cli._store import echo_json, refuse_missing_store, short, with_store
from core.errors import CoreError
from hookspecs import FlowSwitchStore, Store


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
@remote_options
@pass_context
@friendly
def explain(ctx: Context, source: str, trigger: str, data_only: bool, as_json: bool, file: IO[bytes],
            remote: Remote | None) -> None:
    """Show which jobs the event in FILE (JSON {name?, context?, data}; - for stdin) would create:
    the flows it takes and, per job, its action and what the marshal made. Stores nothing.
    Exits 1 if a transform or marshal failed."""
    from core.admin.write import explain as explain_route

    body = {"source": source, "trigger": trigger, "event": _event(file, data_only)}
    done = call_remote(remote, explain_route, body) if remote else _explain_here(ctx, body)
    if as_json:
        echo_json(done)
    else:
        _show(done)
    if done["errors"]:
        sys.exit(1)


def _explain_here(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
    """The explain route run in-process on this project, as JSON values (what the API answers)."""
    from core.admin.local import call_route
    from core.admin.write import explain_with
    from core.pipeline import Pipeline
    from core.runtime import Runtime

    settings = ctx.settings()
    host = ctx.host()
    host.registry.check()
    runtime = Runtime(settings, host, Pipeline.from_host(host))  # never opened: nothing is stored
    disabled = _disabled_flows(ctx, host)

    async def route(call: Any) -> Any:
        return await explain_with(call, disabled)

    done = asyncio.run(call_route(route, runtime, body))
    answer: dict[str, Any] = orjson.loads(orjson.dumps(done, option=orjson.OPT_UTC_Z))
    return answer


def _disabled_flows(ctx: Context, host: Any) -> frozenset[str]:
    """The flows disabled in the store; none when there is no store yet (nothing is created)."""
    try:
        refuse_missing_store(host.create("store"), host.settings["store"])
    except CoreError:
        return frozenset()

    async def read(store: Store) -> frozenset[str]:
        if not isinstance(store, FlowSwitchStore):
            return frozenset()
        return frozenset(d.flow for d in await store.disabled_flows())

    return with_store(ctx, read, host)


def _show(done: dict[str, Any]) -> None:
    if not done["flows"]:
        click.echo("No flow takes this event: it would be stored without jobs.")
        return
    click.echo(f"flows: {', '.join(done['flows'])}")
    rows = [
        (f"{j['destination']}.{j['action']}", j["version"] or "-", short(j["context"], 40), short(j["data"], 80))
        for j in done["jobs"]
    ]
    click.echo(table(("ACTION", "VERSION", "CONTEXT", "DATA"), rows) if rows else "No jobs: every marshal skipped it.")
    for error in done["errors"]:
        click.secho(f"{error['flow']} -> {error['action']}: {error['error']}", fg="red", err=True)
