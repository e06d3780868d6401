"""``core actions pause|resume``: pause an action (``destination.action``) or a whole
destination, so that no scheduler claims its jobs (realtime or scheduled), and resume it (its
backlog then drains). The pause is kept in the store, with who paused it and why."""

from __future__ import annotations

from types import SimpleNamespace

import click

from core.admin import write
from core.admin.local import call_route
from core.cli._common import Context, friendly, pass_context
from core.cli._store import with_store
from core.cli.jobs import pipeline_of
from core.errors import CoreError
from hookspecs import Store


@click.group("actions")
def actions() -> None:
    """Pause and resume actions."""


def _switch(ctx: Context, target: str, reason: str | None, pausing: bool) -> None:
    host = ctx.host()
    pipeline = pipeline_of(host)
    if pipeline is None:
        raise CoreError(
            "no app is configured: the pipeline's destinations are not known",
            hint="run in your project (its core.toml names the app), or pass --app",
        )
    destination, _, action = target.partition(".")
    path = {"destination": destination, **({"action": action} if action else {})}

    async def run(store: Store) -> dict[str, object]:
        runtime = SimpleNamespace(store=store, pipeline=pipeline)
        return await call_route(write.pause if pausing else write.resume, runtime, {"reason": reason}, path)

    done = with_store(ctx, run, host)
    click.echo(f"{'paused' if pausing else 'resumed'} {done['paused' if pausing else 'resumed']}")


@actions.command("pause")
@click.argument("target", metavar="DESTINATION[.ACTION]")
@click.option("--reason", help="Why: kept with the pause.")
@pass_context
@friendly
def pause(ctx: Context, target: str, reason: str | None) -> None:
    """Pause DESTINATION.ACTION, or every action of DESTINATION: no load until resumed."""
    _switch(ctx, target, reason, True)


@actions.command("resume")
@click.argument("target", metavar="DESTINATION[.ACTION]")
@pass_context
@friendly
def resume(ctx: Context, target: str) -> None:
    """Resume a paused action or destination: its backlog drains on the next ticks."""
    _switch(ctx, target, None, False)
