"""``core events``: list stored events and show one with its jobs."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from datetime import UTC, datetime

import click

from core.admin.local import call_route, parse_where
from core.admin.write import replay_events as replay_route
from core.cli._admin_client import Remote, call_remote, remote_options
from core.cli._common import Context, friendly, pass_context, table
from core.cli._store import echo_json, echo_listing, newest, parse_time, short, when, with_store
from core.cli.jobs import due, pipeline_of
from core.errors import CoreError
from hookspecs import Event, Store, WhereEvent


@click.group("events")
def events() -> None:
    """Inspect stored events."""


@events.command("list")
@click.option("--source", "sources", multiple=True, help="Only events of this source (repeatable).")
@click.option("--name", "names", multiple=True, help="Only events with this name (repeatable).")
@click.option("--after", help="Received after: ISO 8601 time, or a duration ago (30m, 2h).")
@click.option("--before", help="Received before: ISO 8601 time, or a duration ago.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="Most events shown (the newest).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@pass_context
@friendly
def list_events(ctx: Context, sources: tuple[str, ...], names: tuple[str, ...], after: str | None,
                before: str | None, limit: int, as_json: bool) -> None:
    """List events, newest first, and how many match in all."""
    where = WhereEvent(
        sources=sources, names=names, received_after=parse_time(after, "--after"),
        received_before=parse_time(before, "--before"),
    )

    async def find(store: Store) -> tuple[list[Event], int]:
        return await newest(store.find_events, where, limit)

    found, total = with_store(ctx, find)
    echo_listing(
        found, as_json=as_json, what="events", headers=("ID", "SOURCE", "NAME", "RECEIVED", "DATA"),
        row=lambda e: (e.id, e.source, e.name, when(e.received_at), short(e.data)), total=total,
    )


@events.command("show")
@click.argument("event_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@pass_context
@friendly
def show_event(ctx: Context, event_id: str, as_json: bool) -> None:
    """Show one event: its fields, context, data and jobs."""

    async def get(store: Store) -> Event | None:
        return await store.get_event(event_id)

    host = ctx.host()
    event = with_store(ctx, get, host)
    if event is None:
        raise CoreError(f"no event {event_id!r} in the store", hint="find ids with: core events list")
    if as_json:
        echo_json(event)
        return
    for field in dataclasses.fields(event):
        if field.name != "jobs":
            value = getattr(event, field.name)
            click.echo(f"{field.name + ':':13} {when(value) if field.name.endswith('_at') else short(value, 200)}")
    if not event.jobs:
        click.echo("\nNo jobs (no flow matched, or every marshal skipped it).")
        return
    pipeline, now = pipeline_of(host), datetime.now(UTC)
    rows = [
        (j.id, f"{j.destination}.{j.action}", j.status.value, str(j.attempt), due(j, pipeline, now),
         j.parent_job_id or "-")
        for j in event.jobs
    ]
    click.echo("\n" + table(("JOB", "ACTION", "STATUS", "ATTEMPT", "DUE", "PARENT"), rows))


@events.command("replay")
@click.option("--to", "to", required=True, metavar="DESTINATION.ACTION", help="The action to replay into.")
@click.option("--where", "where", multiple=True, metavar="FILTER=VALUE",
              help="Only events matching these filters (sources_in, names_in, ids_in, received_after, "
                   "received_before; repeatable). Without it: every stored event.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation on a terminal.")
@remote_options
@pass_context
@friendly
def replay_events(ctx: Context, to: str, where: tuple[str, ...], yes: bool, remote: Remote | None) -> None:
    """Replay stored events into an action: one new job of DESTINATION.ACTION for each, made by
    the action's marshal (a backfill of a new destination, say)."""
    from core.runtime import Runtime

    filters = parse_where(where)

    async def local(body: dict[str, object]) -> dict[str, object]:
        runtime = await Runtime.open(ctx.settings(), services=(), no_plugins=ctx.no_plugins)
        try:
            return await call_route(replay_route, runtime, body)
        finally:
            await runtime.close()

    def run(dry_run: bool) -> dict[str, object]:
        body: dict[str, object] = {"to": to, "where": filters, "dry_run": dry_run}
        return call_remote(remote, replay_route, body) if remote else asyncio.run(local(body))

    if sys.stdin.isatty() and not yes:
        counted = run(True)
        click.confirm(f"replay {counted['created']} event(s) into {to}?", abort=True)
    done = run(False)
    click.echo(f"replayed {done['created']} of {done['matched']} matching event(s) into {done['to']}")
    errors = done["errors"]
    assert isinstance(errors, list)
    for error in errors:
        click.secho(f"{error['event_id']}: {error['error']}", fg="red", err=True)
    if errors:
        sys.exit(1)
