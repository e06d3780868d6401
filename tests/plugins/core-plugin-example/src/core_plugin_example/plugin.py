"""Hookimpls only: the adapter module (and its 'SDK') is imported by the factory."""

from __future__ import annotations

from typing import Any

from hookspecs import AdapterRegistration, Toolkit, hookimpl


def _store(url: str, options: dict[str, Any]) -> Any:
    from core_plugin_example.sdk import ExampleAdapter

    return ExampleAdapter(url, options)


@hookimpl
def core_register_stores() -> list[AdapterRegistration[Any]]:
    return [AdapterRegistration(name="example", schemes=("example",), factory=_store)]


@hookimpl
def core_register_pubsubs() -> list[AdapterRegistration[Any]]:
    return [AdapterRegistration(name="example", schemes=("example",), factory=_store)]


@hookimpl
def core_startup(service: str, toolkit: Toolkit) -> None:
    toolkit.logger.info("example plugin sees %s start", service)
