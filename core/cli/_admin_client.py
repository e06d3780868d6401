"""The operator commands over a running admin API (``--url``, ``CORE_ADMIN_URL``) instead of
the store: the same admin route, called over HTTP with the bearer token of ``--token``
(``CORE_ADMIN_TOKEN``; ``NAME:ACCESS:SECRET`` sends the SECRET), its answer printed the same
way. A connection error or a 4xx answer is a :class:`CoreError` (one line, exit 2), the token
never in it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import click
import httpx

from core.admin.app import endpoints
from core.admin.endpoints import PREFIX, Endpoint, Handler
from core.admin.tokens import secrets_of
from core.errors import CoreError
from hookspecs import redacted_url

F = TypeVar("F", bound=Callable[..., Any])
#: Seconds a call may take (a bulk retry of many jobs runs in the request).
TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class Remote:
    """A running admin API: its base URL and the token to present."""

    url: str
    token: str | None = None


def remote_options(func: F) -> F:
    """Add ``--url`` and ``--token``; the command gets ``remote``: a :class:`Remote` or ``None``."""

    @click.option("--url", envvar="CORE_ADMIN_URL", metavar="URL",
                  help="Work through the admin API at URL (http://127.0.0.1:9091) instead of the store "
                       "[env: CORE_ADMIN_URL].")
    @click.option("--token", envvar="CORE_ADMIN_TOKEN", metavar="TOKEN",
                  help="With --url: the bearer token (a bare secret or NAME:ACCESS:SECRET) [env: CORE_ADMIN_TOKEN].")
    @functools.wraps(func)
    def wrapper(*args: Any, url: str | None, token: str | None, **kwargs: Any) -> Any:
        return func(*args, remote=Remote(url, token) if url else None, **kwargs)

    return wrapper  # type: ignore[return-value]


def _endpoint(handler: Handler, path: dict[str, str]) -> Endpoint:
    """The route ``handler`` serves with exactly the path parameters ``path``."""
    for endpoint in endpoints():
        names = {part[1:-1].partition(":")[0] for part in endpoint.path.split("/") if part.startswith("{")}
        if endpoint.handler is handler and names == set(path):
            return endpoint
    raise LookupError(f"no admin route for {handler.__name__} with {sorted(path)}")  # pragma: no cover - a bug


def _secret(token: str) -> str:
    try:
        return secrets_of((token,))[0]
    except ValueError:
        return token


def call_remote(remote: Remote, handler: Handler, body: dict[str, Any] | None = None,
                path: dict[str, str] | None = None, query: dict[str, Any] | None = None) -> Any:
    """Call the route of ``handler`` at ``remote``; its JSON answer, or :class:`CoreError`."""
    endpoint = _endpoint(handler, path or {})
    base = remote.url.rstrip("/").removesuffix(PREFIX)
    shown = redacted_url(base)
    route = endpoint.path
    for name, value in (path or {}).items():
        route = route.replace(f"{{{name}}}", quote(value, safe=""))
    url = f"{base}{PREFIX}{route}"
    headers = {"Authorization": f"Bearer {_secret(remote.token)}"} if remote.token else {}
    try:
        response = httpx.request(endpoint.method, url, json=body if endpoint.method != "GET" else None,
                                 params=query, headers=headers, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise CoreError(
            f"could not reach the admin API at {shown}: {exc.__class__.__name__}: {exc}",
            hint="check --url / CORE_ADMIN_URL and that 'core start admin' runs there",
        ) from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code >= 400 or answer is None:
        error = answer if isinstance(answer, dict) else {}
        message = error.get("error") or f"HTTP {response.status_code} {response.reason_phrase}"
        allowed = error.get("allowed")
        hint = error.get("hint") or (f"allowed: {', '.join(map(str, allowed))}" if isinstance(allowed, list) else None)
        if response.status_code in (401, 403) and not hint:
            hint = "give a token with --token or CORE_ADMIN_TOKEN (write access for a write)"
        raise CoreError(f"the admin API at {shown} answered {response.status_code}: {message}", hint=hint)
    return answer
