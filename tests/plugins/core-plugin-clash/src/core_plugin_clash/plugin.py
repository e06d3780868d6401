"""Claims the ``example://`` store scheme, which core-plugin-example serves too."""

from __future__ import annotations

from typing import Any

from hookspecs import AdapterRegistration, hookimpl


def _never(url: str, options: dict[str, Any]) -> Any:
    raise AssertionError("a conflicting adapter must never be built")


@hookimpl
def core_register_stores() -> list[AdapterRegistration[Any]]:
    return [AdapterRegistration(name="clash", schemes=("example",), factory=_never)]
