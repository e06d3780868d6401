"""``core actions pause|resume``: pause an action (``destination.action``) or a whole
destination, so that no scheduler claims its jobs (realtime or scheduled), and resume it (its
backlog then drains). The pause is kept in the store, with who paused it and why."""

from __future__ import annotations

from types import SimpleNamespace

import click

from core.admin import write
from core.admin.endpoints import Handler
from core.admin.local import call_route
from core.cli._admin_client import Remote, call_remote, remote_options
from core.cli._common import Context, friendly, pass_context
from core.cli._store import with_store
from core.cli.jobs import pipeline_of
from core.errors import CoreError
from hookspecs import Store


@click.group("actions")
def actions() -> None:
    """Pause and resume actions."""


def _switch(ctx: Context, target: str, reason: str | None, pausing: bool, remote: Remote | None) -> None:
    route = write.pause if pausing else write.resume
    destination, _, action = target.partition(".")
    path = {"destination": destination, **({"action": action} if action else {})}
    done = call_remote(remote, route, {"reason": reason}, path) if remote else _local(ctx, route, reason, path)
    click.echo(f"{'paused' if pausing else 'resumed'} {done['paused' if pausing else 'resumed']}")


def _local(ctx: Context, route: Handler, reason: str | None, path: dict[str, str]) -> dict[str, object]:
    """Run the pause or resume ``route`` over the configured store and the app's pipeline."""
    host = ctx.host()
    pipeline = pipeline_of(host)
    if pipeline is None:
        raise CoreError(
            "no app is configured: the pipeline's destinations are not known",
            hint="run in your project (its core.toml names the app), or pass --app",
        )

    async def run(store: Store) -> dict[str, object]:
        return await call_route(route, SimpleNamespace(store=store, pipeline=pipeline), {"reason": reason}, path)

    return with_store(ctx, run, host)


@actions.command("pause")
@click.argument("target", metavar="DESTINATION[.ACTION]")
@click.option("--reason", help="Why: kept with the pause.")
@remote_options
@pass_context
@friendly
def pause(ctx: Context, target: str, reason: str | None, remote: Remote | None) -> None:
    """Pause DESTINATION.ACTION, or every action of DESTINATION: no load until resumed."""
    _switch(ctx, target, reason, True, remote)


@actions.command("resume")
@click.argument("target", metavar="DESTINATION[.ACTION]")
@remote_options
@pass_context
@friendly
def resume(ctx: Context, target: str, remote: Remote | None) -> None:
    """Resume a paused action or destination: its backlog drains on the next ticks."""
    _switch(ctx, target, None, False, remote)
