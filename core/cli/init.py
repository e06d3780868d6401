"""``core init DIR``: write the quickstart pipeline into a new directory, ready for
``core start`` from inside it.

It never overwrites a file. A directory that already holds the quickstart's files, unchanged,
is left as it is (exit 0), so the README's one-line command can be pasted twice.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
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
    source = resources.files("core.scaffold").joinpath(TEMPLATE)
    if directory.exists() and any(directory.iterdir()):
        if _holds_quickstart(directory, source):
            click.echo(f"{directory} already holds the quickstart pipeline; nothing written.")
            _next(directory)
            return
        raise CoreError(
            f"{directory} exists and is not empty; core init never overwrites files",
            hint="give a new directory name",
        )
    directory.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        (directory / name).write_text(source.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
        click.echo(f"  wrote {directory / name}")
    _next(directory)


def _holds_quickstart(directory: Path, source: Traversable) -> bool:
    """Whether every quickstart file is in ``directory``, unchanged."""
    return all(
        (directory / name).is_file()
        and (directory / name).read_text(encoding="utf-8") == source.joinpath(name).read_text(encoding="utf-8")
        for name in FILES
    )


def _next(directory: Path) -> None:
    click.echo(f"\nNext:\n  cd {directory}\n  core start\n\nthen read {directory / 'README.md'} for what to send it.")
