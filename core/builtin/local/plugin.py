"""Built-in plugin ``local``: an in-process supervisor (leases and node registry in memory)."""

from __future__ import annotations

from typing import Any

from hookspecs import AdapterRegistration, Supervisor, hookimpl


def _supervisor(url: str, options: dict[str, Any]) -> Supervisor:
    from core.builtin.local.supervisor import LocalSupervisor

    return LocalSupervisor(url, **options)


@hookimpl
def core_register_supervisors() -> list[AdapterRegistration[Supervisor]]:
    return [AdapterRegistration(
        name="local", schemes=("local",), factory=_supervisor,
        description="in-process leases and node registry (one process)",
    )]
