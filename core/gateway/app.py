"""The gateway's web application: one route per HTTP trigger, ``GET /_health``, ``GET /metrics``, and the
routes plugins add through ``core_gateway_routes``. Two routes that would answer the same
method on the same path stop start-up with an error naming both owners.

A path whose triggers declare ``cors=`` also answers ``OPTIONS`` (the CORS preflight).

Triggers on a fixed path (no ``{param}``) are the ingest hot path: :class:`Dispatch` hands
their requests straight to the endpoint by a dict lookup, skipping Starlette's middleware
and route matching; every other request goes through the Starlette application.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from core.errors import PipelineError
from core.gateway.cors import CorsPolicy, Preflight
from core.gateway.http import Limits, Receive, Scope, Send, TriggerEndpoint
from core.gateway.ingest import Ingestor
from core.gateway.ratelimit import RateLimit
from core.observability import metrics
from core.observability.http import metrics_route
from core.plugins import collect
from core.plugins._collect import describe, user_frames
from core.runtime import Runtime
from hookspecs import HttpTrigger, Page, WhereEvent

HEALTH_PATH = "/_health"


def health_route(runtime: Runtime) -> Route:
    """``GET /_health``: 200 if the store answers a query, else 503 with the reason."""

    async def health(request: Request) -> Response:
        try:
            await runtime.store.find_events(WhereEvent(page=Page(limit=1)))
        except Exception as exc:  # noqa: BLE001 - any failure means "not healthy", with why
            return JSONResponse({"status": "unavailable", "store": describe(exc)}, status_code=503)
        pubsub = "configured" if runtime.pubsub is not None else "none"
        return JSONResponse({"status": "ok", "store": "ok", "pubsub": pubsub, "node": runtime.node_id})

    return Route(HEALTH_PATH, health, methods=["GET"])


def _methods(route: BaseRoute) -> set[str] | None:
    """The methods a route answers; ``None`` means every method (a mount, a websocket...)."""
    methods = getattr(route, "methods", None)
    return set(methods) if methods else None


def _check_clashes(owned: list[tuple[str, BaseRoute]]) -> None:
    """Refuse two routes on one path whose methods overlap."""
    seen: dict[str, list[tuple[str, set[str] | None]]] = {}
    for owner, route in owned:
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            raise PipelineError(f"{owner} returned {route!r}, which is not a Starlette route with a path")
        methods = _methods(route)
        for other, other_methods in seen.get(path, []):
            if methods is None or other_methods is None or methods & other_methods:
                shared = sorted(methods & other_methods) if methods and other_methods else ["*"]
                raise PipelineError(
                    f"route {'/'.join(shared)} {path} is claimed twice: by {other} and by {owner}",
                    hint="change the path of one of them",
                )
        seen.setdefault(path, []).append((owner, methods))


class Dispatch:
    """The ASGI entry point: fixed-path triggers by lookup, the rest to Starlette."""

    def __init__(self, app: Starlette, direct: dict[tuple[str, str], TriggerEndpoint | Preflight]) -> None:
        self.app = app
        self.direct = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            endpoint = self.direct.get((scope["method"], scope["path"]))
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


def limits(runtime: Runtime) -> Limits:
    """The limits the configuration sets on every HTTP trigger."""
    settings = runtime.settings
    rate = float(settings["gateway.rate_limit"])
    return Limits(
        max_body_bytes=int(settings["gateway.max_body_bytes"]),
        max_json_depth=int(settings["gateway.max_json_depth"]),
        rate=RateLimit(rate, int(settings["gateway.rate_burst"])) if rate > 0 else None,
    )


def build_app(runtime: Runtime, ingestor: Ingestor) -> Dispatch:
    """The web application of one gateway; :class:`PipelineError` if a trigger's key cannot be read."""
    allowed = limits(runtime)
    owned: list[tuple[str, BaseRoute]] = [("the gateway's health check", health_route(runtime))]
    if metrics.enabled():
        owned.append(("the gateway's metrics", metrics_route(runtime.store)))
    direct: dict[tuple[str, str], TriggerEndpoint | Preflight] = {}
    cors: dict[str, dict[str, CorsPolicy]] = {}
    for source, trigger in runtime.pipeline.triggers():
        if isinstance(trigger, HttpTrigger):
            endpoint = TriggerEndpoint(ingestor, source.name, trigger, allowed)
            owned.append((endpoint.where, Route(trigger.path, endpoint, methods=list(trigger.methods))))
            if "{" not in trigger.path:
                direct.update(((method, trigger.path), endpoint) for method in trigger.methods)
            if endpoint.cors is not None:
                cors.setdefault(trigger.path, {}).update(dict.fromkeys(endpoint.cors.methods, endpoint.cors))
    for path, policies in cors.items():
        preflight = Preflight(path, policies)
        owned.append((f"the CORS preflight of {path}", Route(path, preflight, methods=["OPTIONS"])))
        if "{" not in path:
            direct[("OPTIONS", path)] = preflight

    def broken(plugin: str, exc: BaseException) -> None:
        raise PipelineError(f"plugin {plugin!r}: core_gateway_routes failed:\n{user_frames(exc)}")

    extra: list[tuple[str, Any]] = collect(runtime.host.pm, "core_gateway_routes", broken)
    owned.extend((f"plugin {plugin!r}", route) for plugin, route in extra)
    _check_clashes(owned)
    triggers = sorted(
        f"{method} {trigger.path}" for _, trigger in runtime.pipeline.triggers() if isinstance(trigger, HttpTrigger)
        for method in trigger.methods
    )
    handlers = {404: _not_found(triggers), 405: _not_allowed}
    return Dispatch(Starlette(routes=[route for _, route in owned], exception_handlers=handlers), direct)


def _not_found(triggers: list[str]) -> Any:
    """A 404 in JSON like every other gateway error, listing the trigger routes."""

    async def handler(request: Request, exc: Exception) -> Response:
        return JSONResponse(
            {"error": f"no route {request.method} {request.url.path}", "routes": triggers}, status_code=404
        )

    return handler


async def _not_allowed(request: Request, exc: Exception) -> Response:
    """A 405 in JSON, with the ``Allow`` header Starlette computed."""
    headers = getattr(exc, "headers", None) or {}
    allowed = headers.get("Allow", "")
    return JSONResponse(
        {"error": f"{request.url.path} does not answer {request.method}; it answers {allowed}"},
        status_code=405, headers=headers,
    )
