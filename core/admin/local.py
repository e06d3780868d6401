"""The admin API's write routes called in-process, for the CLI working over the store directly
(``core jobs retry --where``, ``core events replay``): same code, same checks, same history."""

from __future__ import annotations

import getpass
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click
from starlette.datastructures import QueryParams

from core.admin.endpoints import Call, Handler
from core.admin.errors import ApiError
from core.errors import CoreError


def parse_where(items: Sequence[str]) -> dict[str, str]:
    """``--where FILTER=VALUE`` options as filters; a repeated filter's values are joined."""
    filters: dict[str, str] = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"{item!r} is not FILTER=VALUE (e.g. status_in=discarded)", param_hint="--where")
        filters[name] = f"{filters[name]},{value}" if name in filters else value
    return filters


def local_call(runtime: Any, body: dict[str, Any], path: dict[str, str] | None = None) -> Call:
    """A :class:`Call` of the admin routes made by this OS user, in-process."""
    return Call(runtime=runtime, who=getpass.getuser(), query=QueryParams(), path=path or {}, body=body)


@contextmanager
def api_errors() -> Iterator[None]:
    """Turn the admin routes' 4xx (:class:`ApiError`) into :class:`CoreError` for the CLI."""
    try:
        yield
    except ApiError as exc:
        allowed = f"allowed: {', '.join(map(str, exc.allowed))}" if isinstance(exc.allowed, list) else None
        raise CoreError(exc.message, hint=exc.hint or allowed) from None


async def call_route(
    handler: Handler, runtime: Any, body: dict[str, Any], path: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run admin route ``handler`` on ``runtime`` as this OS user; its 4xx become :class:`CoreError`."""
    with api_errors():
        result: dict[str, Any] = await handler(local_call(runtime, body, path))
    return result
