"""``core generate``: scaffolding. ``core generate plugin NAME`` writes a plugin distribution
wired to the conformance kit (see :mod:`core.scaffold.plugin`)."""

from __future__ import annotations

from pathlib import Path

import click

from core.cli._common import friendly
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
