"""Registers the Consul supervisor (``consul://host:port``)."""

from __future__ import annotations

from typing import Any

from hookspecs import AdapterRegistration, Capability, Option, Supervisor, hookimpl, number

#: The core contract versions this plugin supports (docs/compatibility.md).
CORE_CONTRACT = ">=1.0,<2"

#: Consul refuses session TTLs outside [10 s, 86400 s].
SUPERVISOR_OPTIONS = {
    "node_ttl": Option(
        number(float, 10, 86400),
        10.0,
        "seconds, 10 to 86400",
        help="a node that has not heartbeated for this long (by Consul's clock) is dropped",
    ),
    "prefix": Option(str, "core/", "a KV path ending in /", help="KV folder of the leases and nodes"),
    "timeout": Option(number(float, 0, strict=True), 10.0, "seconds, > 0", help="timeout of one HTTP call"),
}


def _supervisor(url: str, options: dict[str, Any]) -> Supervisor:
    from core_plugin_consul.supervisor import ConsulSupervisor

    return ConsulSupervisor(url, **options)


@hookimpl
def core_register_supervisors() -> list[AdapterRegistration[Supervisor]]:
    return [
        AdapterRegistration(
            name="consul",
            schemes=("consul",),
            factory=_supervisor,
            options=SUPERVISOR_OPTIONS,
            capabilities=frozenset({Capability.LEASES}),
            description="Consul sessions (TTL) and KV locks with fencing tokens; node registry in KV",
        )
    ]
