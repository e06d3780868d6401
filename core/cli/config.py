"""``core config``: the effective configuration and where each value comes from."""

from __future__ import annotations

import json

import click

from core.cli._common import Context, friendly, pass_context, table
from core.config import KEYS


@click.group("config")
def config() -> None:
    """Inspect configuration."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@pass_context
@friendly
def show(ctx: Context, as_json: bool) -> None:
    """Show every key's value, its origin (file, environment, default) and its variable."""
    settings = ctx.settings()
    if as_json:
        click.echo(json.dumps({k.name: settings[k.name] for k in KEYS}, indent=2, default=list))
        return
    click.echo(f"config file: {settings.file or '(none: defaults)'}")
    rows = [(k.name, repr(settings[k.name]), settings.origin[k.name], k.env) for k in KEYS]
    click.echo(table(("KEY", "VALUE", "FROM", "ENVIRONMENT"), rows))
