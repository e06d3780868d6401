"""``core plugins``: what is installed, what it provides, and whether it loaded."""

from __future__ import annotations

import json

import click

from core.cli._common import Context, friendly, pass_context, table
from core.plugins._records import ProvidedAdapter

HEADERS = ("NAME", "VERSION", "DISTRIBUTION", "STATUS", "PROVIDES", "HOOKS")


@click.group("plugins")
def plugins() -> None:
    """Inspect installed plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@pass_context
@friendly
def list_plugins(ctx: Context, as_json: bool, show_all: bool) -> None:
    """List installed plugins: version, distribution, status, adapters and hooks.

    PROVIDES names each adapter as kind:name with the URL schemes it serves, e.g.
    pubsub:rabbitmq (amqp, amqps); adapters of several kinds sharing a name and schemes share
    one entry (store/pubsub:postgresql (postgresql, postgres)). Listing never imports an
    adapter's SDK: plugin modules only register factories.
    """
    host = ctx.host(**{"plugins.strict": False})
    records = sorted(
        (r for r in host.records.values() if show_all or not r.builtin), key=lambda r: r.name
    )
    if as_json:
        click.echo(json.dumps([r.to_json() for r in records], indent=2))
    elif not records:
        click.echo("No plugins installed (use --all to see the built-ins).")
    else:
        rows = [
            (r.name, r.version, r.distribution, r.status, provided(r.adapters) or "-",
             ", ".join(r.hooks) or "-")
            for r in records
        ]
        click.echo(table(HEADERS, rows))
        for r in records:
            if r.error:
                click.secho(f"{r.name}: {r.error}", fg="red", err=True)
            elif r.warning:
                click.secho(f"{r.name}: warning: {r.warning}", fg="yellow", err=True)
    if host.registry.conflicts:
        raise SystemExit(1)


def provided(adapters: list[ProvidedAdapter]) -> str:
    """The PROVIDES cell: one ``kind/kind:name (schemes)`` entry per name and scheme list, so a
    plugin offering four kinds on the same URLs takes one entry, not four."""
    kinds: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for adapter in adapters:
        kinds.setdefault((adapter.name, tuple(adapter.schemes)), []).append(adapter.kind)
    return ", ".join(f"{'/'.join(k)}:{name} ({', '.join(schemes)})" for (name, schemes), k in kinds.items())
