"""The admin API's Starlette application: each :class:`~core.admin.endpoints.Endpoint` becomes a
route that checks the bearer token, parses the body, runs the handler and answers JSON.

Without tokens (``admin.tokens`` empty, so a loopback listener) every route is open and writes
are recorded as made by ``local``. With tokens, every route needs ``Authorization: Bearer``;
a write route needs a write token. Refusals are JSON saying what is missing; an unexpected
failure is logged and answered ``500`` JSON without its details.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from core.admin import dashboard, flows, operations, purge, read, write
from core.admin.endpoints import PREFIX, Call, Endpoint, openapi
from core.admin.errors import ApiError
from core.admin.tokens import AdminToken, find_token, tokens_of

log = logging.getLogger("core.admin")
LOCAL = "local"
MAX_BODY = 1 << 20


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``value`` (dataclasses, datetimes, statuses too) as a JSON response."""
    body = orjson.dumps(value, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _error(exc: ApiError, headers: dict[str, str] | None = None) -> Response:
    return json_response(exc.body(), exc.status, headers)


def who_calls(request: Request, tokens: list[AdminToken], writes: bool) -> str:
    """The name of the token of ``request`` (``local`` without tokens); :class:`ApiError` 401/403."""
    if not tokens:
        return LOCAL
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if not header:
        raise ApiError(
            401,
            "this route needs a bearer token: send 'Authorization: Bearer <token>'",
            hint="the tokens are in admin.tokens / CORE_ADMIN_TOKEN",
        )
    if scheme.lower() != "bearer" or not presented.strip():
        raise ApiError(401, "the Authorization header is not 'Bearer <token>'")
    token = find_token(tokens, presented.strip())
    if token is None:
        raise ApiError(401, "the bearer token is not one of admin.tokens", hint="check the token you send")
    if writes and not token.may_write:
        raise ApiError(
            403,
            f"token {token.name!r} is read-only and this route writes",
            hint="use a token with write access (NAME:write:SECRET in admin.tokens)",
        )
    return token.name


async def _body(request: Request, endpoint: Endpoint) -> Any:
    if endpoint.body is None:
        return None
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiError(413, f"the body is larger than {MAX_BODY} bytes")
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a JSON object", hint='e.g. {"reason": "destination fixed"}')
    return body


def route(endpoint: Endpoint, runtime: Any, tokens: list[AdminToken]) -> Route:
    """The Starlette route of ``endpoint``."""

    async def serve(request: Request) -> Response:
        try:
            who = who_calls(request, tokens, endpoint.write)
            call = Call(
                runtime=runtime,
                who=who,
                query=request.query_params,
                path=dict(request.path_params),
                body=await _body(request, endpoint),
            )
            result = await endpoint.handler(call)
        except ApiError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            return _error(exc, headers)
        except Exception:
            log.exception("admin route %s %s failed", endpoint.method, endpoint.path)
            return json_response({"error": "the admin API failed on this request; see the service's log"}, 500)
        if isinstance(result, tuple):
            status, result = result
            return json_response(result, status)
        return json_response(result, endpoint.status)

    serve.__name__ = endpoint.operation_id
    return Route(PREFIX + endpoint.path, serve, methods=[endpoint.method])


def endpoints() -> Sequence[Endpoint]:
    """Every admin route."""
    return (*read.ENDPOINTS, *flows.ENDPOINTS, *write.ENDPOINTS, *purge.ENDPOINTS, *operations.ENDPOINTS)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "no such admin route: see /admin/api/openapi.json" if exc.status_code == 404 else exc.detail
    return json_response({"error": message}, exc.status_code)


def build_app(runtime: Any) -> Starlette:
    """The admin application of ``runtime`` (its settings hold ``admin.tokens``)."""
    tokens = tokens_of(runtime.settings["admin.tokens"])
    listed = endpoints()
    schema = openapi(listed)

    async def serve_schema(request: Request) -> Response:
        try:
            who_calls(request, tokens, False)
        except ApiError as exc:
            return _error(exc, {"WWW-Authenticate": "Bearer"})
        return json_response(schema)

    routes: list[BaseRoute] = [Route(PREFIX + "/openapi.json", serve_schema, methods=["GET"])]
    routes += [route(ep, runtime, tokens) for ep in listed]
    routes += dashboard.routes(runtime, tokens, LOCAL)
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
