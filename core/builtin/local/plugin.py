"""Built-in plugin ``local``: an in-process supervisor (leases and node registry in memory)."""

from __future__ import annotations

from typing import Any

from hookspecs import AdapterRegistration, Capability, Option, Supervisor, hookimpl, number

#: The options of ``[options.local]`` (or ``local://?node_ttl=10``).
OPTIONS = {
    "node_ttl": Option(number(float, 0, strict=True), 30.0, "seconds, > 0",
                       help="seconds after its last heartbeat that a node is still listed"),
}


def _supervisor(url: str, options: dict[str, Any]) -> Supervisor:
    from core.builtin.local.supervisor import LocalSupervisor

    return LocalSupervisor(url, **options)


@hookimpl
def core_register_supervisors() -> list[AdapterRegistration[Supervisor]]:
    return [AdapterRegistration(
        name="local", schemes=("local",), factory=_supervisor, options=OPTIONS,
        capabilities=frozenset({Capability.LEASES}),
        description="in-process leases and node registry (one process)",
    )]
