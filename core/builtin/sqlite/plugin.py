"""Built-in plugin ``sqlite``: the embedded store, supervisor and wanderer on SQLite (WAL mode).

Both adapters read ``[options.sqlite]``: a key goes to each one that takes it. The URL query
is SQLite's (``driver_query``), not options.
"""

from __future__ import annotations

from typing import Any

from hookspecs import AdapterRegistration, Capability, Option, Store, Supervisor, Wanderer, hookimpl, number

_BUSY_TIMEOUT = Option(
    number(int, 0), 5000, "milliseconds, a whole number >= 0",
    help="how long a write waits for another process's write lock before it gives up (store: StoreUnavailable)",
)
#: The store's options.
STORE_OPTIONS = {
    "commit_delay_ms": Option(number(float, 0), 2.0, "milliseconds, >= 0",
                              help="how long the writer waits for more writes to share a commit"),
    "max_batch": Option(number(int, 1), 5000, "a whole number >= 1",
                        help="rows above which the writer closes a shared transaction"),
    "purge_batch": Option(number(int, 1), 1000, "a whole number >= 1", help="events deleted per purge transaction"),
    "busy_timeout_ms": _BUSY_TIMEOUT,
}
#: The supervisor's options.
SUPERVISOR_OPTIONS = {
    "node_ttl": Option(number(float, 0, strict=True), 10.0, "seconds, > 0",
                       help="seconds after its last heartbeat that a node is still listed as live"),
    "busy_timeout_ms": _BUSY_TIMEOUT,
}
#: The wanderer's options.
WANDERER_OPTIONS = {"busy_timeout_ms": _BUSY_TIMEOUT}


def _store(url: str, options: dict[str, Any]) -> Store:
    from core.builtin.sqlite.store import SQLiteStore

    return SQLiteStore(url, **options)


def _wanderer(url: str, options: dict[str, Any]) -> Wanderer:
    from core.builtin.sqlite.wanderer import SQLiteWanderer

    return SQLiteWanderer(url, **options)


@hookimpl
def core_register_stores() -> list[AdapterRegistration[Store]]:
    return [AdapterRegistration(
        name="sqlite", schemes=("sqlite",), factory=_store, options=STORE_OPTIONS, driver_query=True,
        capabilities=frozenset({Capability.PURGE, Capability.PAUSE, Capability.FLOWS, Capability.RATE_LIMITS,
                                Capability.ORDERING, Capability.CONCURRENCY}),
        description="embedded store on a SQLite file (WAL, group commit)",
    )]


def _supervisor(url: str, options: dict[str, Any]) -> Supervisor:
    from core.builtin.sqlite.supervisor import SQLiteSupervisor

    return SQLiteSupervisor(url, **options)


@hookimpl
def core_register_supervisors() -> list[AdapterRegistration[Supervisor]]:
    return [AdapterRegistration(
        name="sqlite", schemes=("sqlite",), factory=_supervisor, options=SUPERVISOR_OPTIONS,
        capabilities=frozenset({Capability.LEASES}),
        description="leases and node registry in a SQLite file (the processes of one machine)",
    )]


@hookimpl
def core_register_wanderers() -> list[AdapterRegistration[Wanderer]]:
    return [AdapterRegistration(
        name="sqlite", schemes=("sqlite",), factory=_wanderer, options=WANDERER_OPTIONS, driver_query=True,
        description="migration history in a SQLite file",
    )]
