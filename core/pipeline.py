"""The pipeline: every source, destination and flow that the plugins and the app register,
checked for consistency once at start-up and indexed for the hot path.

Two registrations with one name, a flow naming a source or action that does not exist, a
schedule whose interval does not parse, or two migrations of one scope with one version, stop
start-up with a :class:`PipelineError` naming
the plugins involved. A malformed ``ordering_key`` path or ``concurrency`` stops it with a
:class:`~hookspecs.ConfigError` naming the action, the value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from core.errors import ConfigError, PipelineError
from core.plugins import PluginHost, collect
from core.plugins._collect import user_frames
from core.timing import parse_interval
from hookspecs import Action, Destination, Flow, HttpTrigger, Migration, Schedule, Source, Trigger

T = TypeVar("T")

#: What an :attr:`~hookspecs.Action.ordering_key` may be.
ORDERING_KEY_FORMS = (
    "a dotted path into the job: 'context.<key>[.<key>…]' or 'data[.<key>…]' (e.g. 'context.user_id'), "
    "or None; for any other function of the job, override ordering_key_for()"
)
#: What a ``concurrency`` may be.
CONCURRENCY_FORMS = "a whole number >= 1 (jobs of the action loading at once), or None for no limit"


def check_ordering_key(where: str, path: object) -> None:
    """Refuse an ordering key that is not ``None`` or a ``context.``/``data`` dotted path."""
    if path is None:
        return
    head, *steps = path.split(".") if isinstance(path, str) else ("",)
    if head not in ("context", "data") or (head == "context" and not steps) or not all(steps):
        raise ConfigError(where, "ordering_key", path, ORDERING_KEY_FORMS)


def check_concurrency(where: str, value: object) -> None:
    """Refuse a concurrency that is not ``None`` or a whole number ``>= 1``."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(where, "concurrency", value, CONCURRENCY_FORMS)


def _index(kind: str, pairs: Iterable[tuple[str, Any]], cls: type[T], owners: dict[str, str]) -> dict[str, T]:
    """Index named objects, refusing wrong types and duplicates (naming both plugins)."""
    found: dict[str, T] = {}
    for plugin, item in pairs:
        if not isinstance(item, cls):
            raise PipelineError(
                f"plugin {plugin!r}: core_register_{kind}s returned {item!r}, not a {cls.__name__}"
            )
        name: str = getattr(item, "name")  # noqa: B009 - every registered type has a name
        key = f"{kind}:{name}"
        if key in owners:
            raise PipelineError(
                f"two {kind}s are named {name!r}: one from plugin {owners[key]!r}, one from {plugin!r}",
                hint=f"rename one of them, or disable a plugin with CORE_DISABLE_PLUGINS={plugin}",
            )
        owners[key] = plugin
        found[name] = item
    return found


def _migrations(pairs: Iterable[tuple[str, Any]]) -> list[Migration]:
    """The offered migrations, refusing wrong types and a scope's version offered twice."""
    found: dict[tuple[str, str], tuple[str, Migration]] = {}
    for plugin, item in pairs:
        if not isinstance(item, Migration):
            raise PipelineError(f"plugin {plugin!r}: core_register_migrations returned {item!r}, not a Migration")
        key = (item.scope, item.version)
        if key in found:
            other, first = found[key]
            raise PipelineError(
                f"two migrations of {item.scope} have version {item.version}: {first.name!r} from plugin "
                f"{other!r} and {item.name!r} from plugin {plugin!r}",
                hint="give every migration of a scope its own version",
            )
        found[key] = (plugin, item)
    return [migration for _, migration in found.values()]


@dataclass(slots=True)
class Pipeline:
    """Sources, destinations and flows, validated; lookups used by gateway and scheduler."""

    sources: dict[str, Source]
    destinations: dict[str, Destination]
    flows: list[Flow]
    owners: dict[str, str] = field(default_factory=dict)
    #: The migrations plugins and the app offer (``core_register_migrations``), checked.
    migrations: list[Migration] = field(default_factory=list)
    _by_trigger: dict[tuple[str, str], list[Flow]] = field(default_factory=dict)

    @classmethod
    def from_host(cls, host: PluginHost) -> Pipeline:
        """Collect and validate everything registered with the host."""

        def broken(plugin: str, exc: BaseException) -> None:
            who = "your app" if plugin == "app" else f"plugin {plugin!r}"
            raise PipelineError(f"{who} failed while registering its pipeline:\n{user_frames(exc)}")

        owners: dict[str, str] = {}
        sources = _index("source", collect(host.pm, "core_register_sources", broken), Source, owners)
        destinations = _index(
            "destination", collect(host.pm, "core_register_destinations", broken), Destination, owners
        )
        flows = list(_index("flow", collect(host.pm, "core_register_flows", broken), Flow, owners).values())
        migrations = _migrations(collect(host.pm, "core_register_migrations", broken))
        pipeline = cls(sources, destinations, flows, owners, migrations)
        pipeline.validate()
        return pipeline

    def validate(self) -> None:
        """Check every reference, schedule, ordering key and concurrency; raise :class:`PipelineError`
        (:class:`~hookspecs.ConfigError` for a key or a concurrency) on the first problem."""
        for destination in self.destinations.values():
            check_concurrency(f"destination {destination.name}", destination.concurrency)
            for action in destination.actions.values():
                check_ordering_key(f"action {destination.name}.{action.name}", action.ordering_key)
                check_concurrency(f"action {destination.name}.{action.name}", action.concurrency)
                schedule = destination.schedule_of(action.name)
                try:
                    parse_interval(schedule.interval)
                except ValueError as exc:
                    raise PipelineError(f"destination {destination.name!r}, action {action.name!r}: {exc}") from None
                if schedule.max_retries < 0:
                    raise PipelineError(
                        f"destination {destination.name!r}, action {action.name!r}: "
                        f"max_retries = {schedule.max_retries} must be 0 or more"
                    )
        routes: dict[tuple[str, str], str] = {}
        for source in self.sources.values():
            for trigger in source.triggers.values():
                if isinstance(trigger, HttpTrigger):
                    for method in trigger.methods:
                        where = f"source {source.name!r}, trigger {trigger.name!r}"
                        taken = routes.get((method, trigger.path))
                        if taken:
                            raise PipelineError(f"{where}: {method} {trigger.path} is already served by {taken}")
                        routes[(method, trigger.path)] = where
                interval = getattr(trigger, "interval", None)
                if interval is not None:
                    try:
                        parse_interval(interval)
                    except ValueError as exc:
                        raise PipelineError(f"source {source.name!r}, trigger {trigger.name!r}: {exc}") from None
        for flow in self.flows:
            flow_source = self.sources.get(flow.source)
            if flow_source is None:
                raise PipelineError(
                    f"flow {flow.name!r} reads source {flow.source!r}, which is not registered; "
                    f"registered sources: {', '.join(sorted(self.sources)) or 'none'}"
                )
            if flow.trigger != "*" and flow.trigger not in flow_source.triggers:
                raise PipelineError(
                    f"flow {flow.name!r}: source {flow.source!r} has no trigger {flow.trigger!r}; "
                    f"its triggers: {', '.join(flow_source.triggers)}"
                )
            for ref in flow.actions:
                self.action(ref, where=f"flow {flow.name!r}")

    def action(
        self, ref: str, *, default_destination: str | None = None, where: str = ""
    ) -> tuple[Destination, Action]:
        """Resolve ``"destination.action"`` (or ``"action"`` within ``default_destination``)."""
        dest_name, _, action_name = ref.rpartition(".")
        dest_name = dest_name or (default_destination or "")
        destination = self.destinations.get(dest_name)
        prefix = f"{where}: " if where else ""
        if destination is None:
            raise PipelineError(
                f"{prefix}action {ref!r} names destination {dest_name!r}, which is not registered; "
                f"registered destinations: {', '.join(sorted(self.destinations)) or 'none'}"
            )
        action = destination.actions.get(action_name)
        if action is None:
            raise PipelineError(
                f"{prefix}destination {dest_name!r} has no action {action_name!r}; "
                f"its actions: {', '.join(destination.actions)}"
            )
        return destination, action

    def schedule_of(self, destination: str, action: str) -> Schedule:
        """The action's schedule, else the destination's, else the default."""
        return self.destinations[destination].schedule_of(action)

    def flows_for(self, source: str, trigger: str, event: str) -> list[Flow]:
        """Flows an event of ``source``/``trigger`` named ``event`` takes (cached per trigger:
        this is on the ingest path)."""
        key = (source, trigger)
        flows = self._by_trigger.get(key)
        if flows is None:
            flows = self._by_trigger[key] = [
                f for f in self.flows if f.source == source and f.trigger in ("*", trigger)
            ]
        return [f for f in flows if not f.events or event in f.events]

    def triggers(self) -> list[tuple[Source, Trigger]]:
        """Every (source, trigger) pair."""
        return [(s, t) for s in self.sources.values() for t in s.triggers.values()]
