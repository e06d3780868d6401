"""Progress of a long bulk command (``core jobs retry --where``, ``core purge``): a rich progress
bar when stderr is a terminal, else plain lines (``retried 5000/10000``) a log keeps readable."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

Report = Callable[[int, int], None]


@contextmanager
def progress(verb: str, total: int) -> Iterator[Report]:
    """A ``report(done, total)`` callback showing how far ``verb`` got, on stderr."""
    if not sys.stderr.isatty():

        def line(done: int, total: int) -> None:
            click.echo(f"{verb} {done}/{total}", err=True)

        yield line
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(verb), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(verb, total=total)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
