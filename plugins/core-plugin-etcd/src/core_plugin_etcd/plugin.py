"""Registers the etcd supervisor (``etcd://host:port``)."""

from __future__ import annotations

from typing import Any

from hookspecs import AdapterRegistration, Capability, Option, Supervisor, hookimpl, number

#: The core contract versions this plugin supports (docs/compatibility.md).
CORE_CONTRACT = ">=1.0,<2"

SUPERVISOR_OPTIONS = {
    "node_ttl": Option(
        number(float, 2, 86400),
        10.0,
        "seconds, 2 to 86400",
        help="a node that has not heartbeated for this long (by etcd's clock) is dropped",
    ),
    "prefix": Option(str, "core/", "a key prefix ending in /", help="key prefix of the leases and nodes"),
    "timeout": Option(number(float, 0, strict=True), 10.0, "seconds, > 0", help="timeout of one gRPC call"),
}


def _supervisor(url: str, options: dict[str, Any]) -> Supervisor:
    from core_plugin_etcd.supervisor import EtcdSupervisor

    return EtcdSupervisor(url, **options)


@hookimpl
def core_register_supervisors() -> list[AdapterRegistration[Supervisor]]:
    return [
        AdapterRegistration(
            name="etcd",
            schemes=("etcd",),
            factory=_supervisor,
            options=SUPERVISOR_OPTIONS,
            capabilities=frozenset({Capability.LEASES}),
            description="etcd leases (TTL, keep-alive) with revision fencing tokens; node registry under a prefix",
        )
    ]
