"""The admin API's 4xx errors: a JSON body saying what is wrong and what is allowed."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A request the API refuses: ``status``, a ``message`` for people, optionally ``allowed``
    (the accepted values) and a ``hint`` (what to do)."""

    def __init__(self, status: int, message: str, *, allowed: Any = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.allowed = allowed
        self.hint = hint

    def body(self) -> dict[str, Any]:
        """The JSON body of the response."""
        body: dict[str, Any] = {"error": self.message}
        if self.allowed is not None:
            body["allowed"] = self.allowed
        if self.hint:
            body["hint"] = self.hint
        return body


def not_found(what: str, name: str, known: list[str] | None = None, hint: str | None = None) -> ApiError:
    """A 404 for ``what`` named ``name``, listing the known names when there are few."""
    return ApiError(404, f"no {what} {name!r}", allowed=known, hint=hint)
