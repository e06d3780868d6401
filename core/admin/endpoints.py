"""Route metadata of the admin API, and the OpenAPI 3 schema generated from it.

Each route is an :class:`Endpoint`: method, path, summary, parameters, whether it writes, a
request body schema and a response schema. The Starlette routes and ``/admin/api/openapi.json``
are both built from these records, so the schema cannot drift from the routes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import QueryParams

from core import __version__

PREFIX = "/admin/api"
JSON = dict[str, Any]
Handler = Callable[..., Awaitable[Any]]

ERROR_SCHEMA: JSON = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "allowed": {}, "hint": {"type": "string"}},
}


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the runtime, who calls (the token's name), the parameters and body."""

    runtime: Any
    who: str
    query: QueryParams
    path: dict[str, str]
    body: Any = None


@dataclass(frozen=True, slots=True)
class Param:
    """One query or path parameter; ``schema`` is its JSON schema."""

    name: str
    where: str
    schema: JSON
    description: str
    required: bool = False


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One admin route. ``handler(call)`` returns what is sent as JSON (``(status, value)`` for
    another status than 200); it raises :class:`~core.admin.errors.ApiError` for a 4xx."""

    method: str
    path: str
    handler: Handler
    summary: str
    params: Sequence[Param] = ()
    write: bool = False
    body: JSON | None = None
    response: JSON = field(default_factory=lambda: {"type": "object"})
    status: int = 200
    #: The OpenAPI operation id when the handler serves several routes.
    name: str = ""

    @property
    def operation_id(self) -> str:
        return self.name or self.handler.__name__


def path_param(name: str, description: str) -> Param:
    """A required path parameter (a string)."""
    return Param(name, "path", {"type": "string", "minLength": 1}, description, required=True)


def openapi(endpoints: Sequence[Endpoint]) -> JSON:
    """The OpenAPI 3.1 document of ``endpoints``."""
    paths: dict[str, JSON] = {}
    for ep in endpoints:
        errors = {"400": "bad parameters", "401": "no or wrong bearer token", "404": "no such item"}
        if ep.write:
            errors |= {"403": "a read-only token on a write route", "409": "nothing to do", "422": "bad body"}
        responses: JSON = {
            str(ep.status): {"description": "OK", "content": {"application/json": {"schema": ep.response}}}
        }
        for code, text in errors.items():
            responses[code] = {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
        operation: JSON = {
            "operationId": ep.operation_id,
            "summary": ep.summary,
            "tags": ["write" if ep.write else "read"],
            "parameters": [
                {
                    "name": p.name,
                    "in": p.where,
                    "required": p.required,
                    "description": p.description,
                    "schema": p.schema,
                }
                for p in ep.params
            ],
            "responses": responses,
        }
        if ep.body is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": ep.body}}}
        paths.setdefault(PREFIX + ep.path.replace(":path}", "}"), {})[ep.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "core admin API", "version": __version__},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }
