"""``core config``: the effective configuration and where each value comes from.

``show`` prints every key, then every ``[options.NAME]`` table, with nothing secret in them
(see :mod:`core.redaction`).
"""

from __future__ import annotations

import json

import click

from core.cli._common import Context, friendly, pass_context, table
from core.config import KEYS
from core.redaction import options_rows, shown_values


@click.group("config")
def config() -> None:
    """Inspect configuration."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@pass_context
@friendly
def show(ctx: Context, as_json: bool) -> None:
    """Show every key's value, its origin (file, environment, default) and its variable, then
    the [options.*] tables (secrets are never shown)."""
    host = ctx.host()
    settings = host.settings
    values = shown_values(settings)
    options = options_rows(host)
    if as_json:
        click.echo(json.dumps({**values, "options": dict(options)}, indent=2, default=list))
        return
    click.echo(f"config file: {settings.file or '(none: defaults)'}")
    rows = [(k.name, repr(values[k.name]), settings.origin[k.name], k.env) for k in KEYS]
    rows += [(key, repr(value), str(settings.file or "-"), "-") for key, value in options]
    click.echo(table(("KEY", "VALUE", "FROM", "ENVIRONMENT"), rows))
