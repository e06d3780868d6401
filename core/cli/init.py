"""``core init DIR``: write the quickstart pipeline into a new directory, ready for
``core start`` from inside it."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from core.cli._common import friendly
from core.errors import CoreError

TEMPLATE = "quickstart"
FILES = ("pipeline.py", "core.toml", "README.md")


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@friendly
def init(directory: Path) -> None:
    """Write the quickstart pipeline (pipeline.py, core.toml, README.md) into DIRECTORY."""
    if directory.exists() and any(directory.iterdir()):
        raise CoreError(
            f"{directory} exists and is not empty; core init never overwrites files",
            hint="give a new directory name",
        )
    directory.mkdir(parents=True, exist_ok=True)
    source = resources.files("core.scaffold").joinpath(TEMPLATE)
    for name in FILES:
        (directory / name).write_text(source.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
        click.echo(f"  wrote {directory / name}")
    click.echo(f"\nNext:\n  cd {directory}\n  core start\n\nthen read {directory / 'README.md'} for what to send it.")
