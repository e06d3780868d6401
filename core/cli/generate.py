"""``core generate``: scaffolding. ``core generate plugin NAME`` writes a plugin distribution
wired to the conformance kit (see :mod:`core.scaffold.plugin`); ``core generate migration NAME
--scope SCOPE`` writes the up and down files of a new migration (:mod:`core.wanderer.files`)."""

from __future__ import annotations

from pathlib import Path

import click

from core.cli._common import Context, friendly, pass_context
from core.scaffold.plugin import KINDS, check_spec, generate


@click.group("generate")
def generate_group() -> None:
    """Write new code from templates."""


@generate_group.command("plugin")
@click.argument("name")
@click.option("--kind", type=click.Choice(KINDS), default="store", show_default=True,
              help="What the plugin provides.")
@click.option("--path", "path", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write a standalone plugin into this directory (default: plugins/core-plugin-NAME).")
@friendly
def generate_plugin(name: str, kind: str, path: Path | None) -> None:
    """Write the plugin NAME: packaging, entry point, a stub and a test module running the
    conformance kit, which fails until the stub is implemented."""
    spec = check_spec(name, kind)
    target = path if path is not None else Path("plugins") / spec.distribution
    files = generate(spec, target, in_repo=path is None)
    click.echo(f"wrote {spec.distribution} ({kind}) in {target}/ ({len(files)} files)")
    click.echo(f"next: pip install -e '{target}[test]' && core plugins list && pytest {target}")


@generate_group.command("migration")
@click.argument("name")
@click.option("--scope", required=True, metavar="SCOPE",
              help="source:S, source/trigger:S/T, destination:D, destination/action:D/A (or s:, s/t:, d:, d/a:), "
                   "store.")
@click.option("--dir", "folder", metavar="DIR", default=None,
              help="The migrations folder [default: migrations/ beside the configuration].")
@pass_context
@friendly
def generate_migration(ctx: Context, name: str, scope: str, folder: str | None) -> None:
    """Write DIR/SCOPE/YYYYMMDDHHMMSS.NAME.up.sql and .down.sql (versioned by the current UTC time)."""
    from core.wanderer.files import write_migration

    root = Path(folder) if folder else ctx.settings().root / "migrations"
    files = write_migration(root, scope, name)
    click.echo(f"wrote {files.up}")
    click.echo(f"wrote {files.down}")
    click.echo("next: write the SQL, then core migrate run --scope " + files.scope)
