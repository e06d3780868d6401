"""``core flows list|disable|enable``: the pipeline's flows with their enabled state, and
disabling or enabling one. A disabled flow is kept in the store, with who disabled it, why and
when; every gateway makes none of its jobs for the events it stores within
``gateway.flow_refresh_seconds`` (the events are still stored), until it is enabled again."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import click

from core.admin import flows as routes
from core.admin.local import call_route
from core.cli._admin_client import Remote, call_remote, remote_options
from core.cli._common import Context, friendly, pass_context, table
from core.cli._store import echo_json, when, with_store
from core.cli.jobs import pipeline_of
from core.errors import CoreError
from hookspecs import Store


@click.group("flows")
def flows() -> None:
    """List, disable and enable flows."""


def _route(ctx: Context, name: str, body: dict[str, Any], path: dict[str, str], remote: Remote | None) -> Any:
    """Run the admin flows route ``name`` at ``remote``, or over the configured store and the
    app's pipeline."""
    handler = getattr(routes, name)
    if remote:
        return call_remote(remote, handler, body, path)
    host = ctx.host()
    pipeline = pipeline_of(host)
    if pipeline is None:
        raise CoreError(
            "no app is configured: the pipeline's flows are not known",
            hint="run in your project (its core.toml names the app), or pass --app",
        )

    async def run(store: Store) -> dict[str, Any]:
        return await call_route(handler, SimpleNamespace(store=store, pipeline=pipeline), body, path)

    return with_store(ctx, run, host)


@flows.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@remote_options
@pass_context
@friendly
def list_(ctx: Context, as_json: bool, remote: Remote | None) -> None:
    """List the flows: source, trigger, actions, enabled or who disabled it, why and when."""
    found = _route(ctx, "list_flows", {}, {}, remote)["flows"]
    if as_json:
        echo_json(found)
    elif not found:
        click.echo("The pipeline has no flows.")
    else:
        rows = [
            [f["name"], f["source"], f["trigger"], ",".join(f["actions"]), "yes" if f["enabled"] else "no",
             f["disabled_by"] or "-", when(f["disabled_at"]), f["reason"] or "-"]
            for f in found
        ]
        click.echo(table(["FLOW", "SOURCE", "TRIGGER", "ACTIONS", "ENABLED", "BY", "SINCE", "REASON"], rows))


@flows.command("disable")
@click.argument("flow")
@click.option("--reason", help="Why: kept with the flow's disabled state.")
@remote_options
@pass_context
@friendly
def disable(ctx: Context, flow: str, reason: str | None, remote: Remote | None) -> None:
    """Disable FLOW: the events stored from then on get none of its jobs."""
    click.echo(f"disabled {_route(ctx, 'disable_flow', {'reason': reason}, {'flow': flow}, remote)['disabled']}")


@flows.command("enable")
@click.argument("flow")
@remote_options
@pass_context
@friendly
def enable(ctx: Context, flow: str, remote: Remote | None) -> None:
    """Enable a disabled FLOW: the events stored from then on get its jobs again."""
    click.echo(f"enabled {_route(ctx, 'enable_flow', {}, {'flow': flow}, remote)['enabled']}")
