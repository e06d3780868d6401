"""Shared pieces of the command line: global options, loading settings and the host, and
turning :class:`~core.errors.CoreError` into a message and exit status 2 (no traceback)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from core.config import Settings, load_settings
from core.errors import CoreError
from core.plugins import PluginHost

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(slots=True)
class Context:
    """What the ``core`` group's options say, for sub-commands."""

    config: str | None = None
    app: str | None = None
    no_plugins: bool = False

    def settings(self, **overrides: Any) -> Settings:
        """Validated settings with the global flags and ``overrides`` applied."""
        return load_settings(self.config, overrides={"app": self.app, **overrides})

    def host(self, **overrides: Any) -> PluginHost:
        """A loaded plugin host."""
        return PluginHost(self.settings(**overrides), no_plugins=self.no_plugins)


pass_context = click.make_pass_decorator(Context, ensure=True)


def friendly(func: F) -> F:
    """Print a :class:`CoreError` as ``error: …`` and exit 2 instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CoreError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned plain-text table (the last column is not padded)."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(w) for c, w in zip(cells[:-1], widths[:-1], strict=True)]
        return "  ".join([*padded, cells[-1]]).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])
