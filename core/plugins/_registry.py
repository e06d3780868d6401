"""The adapter registry: registrations indexed by kind, name and URL scheme.

Built from the registration hook of each adapter kind (:data:`hookspecs.ADAPTER_KINDS`). Two
plugins offering one name or scheme is a conflict naming both distributions; a URL whose
scheme nobody serves is an error listing the installed schemes and the distribution to
install. Building an adapter reads its options against its schema (:mod:`._options`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pluggy

from core.errors import CoreError, PluginError
from core.plugins._collect import collect, describe
from core.plugins._options import adapter_options, reserved_option
from core.plugins._records import PluginRecord, ProvidedAdapter
from hookspecs import ADAPTER_KINDS, AdapterRegistration, redacted_url

#: The URL schemes served by the project's own plugins (``plugins/core-plugin-<name>``), to tell
#: the user exactly what to install. No index serves them: they are installed from the wheels
#: ``nox -s wheels`` builds, or from the repository's folder. An unknown scheme names none.
KNOWN_PLUGINS = {
    "postgresql": "core-plugin-postgres",
    "postgres": "core-plugin-postgres",
    "postgresql+asyncpg": "core-plugin-postgres",
    "kafka": "core-plugin-kafka",
    "kafka+ssl": "core-plugin-kafka",
    "kafka+sasl": "core-plugin-kafka",
    "nats": "core-plugin-nats",
    "nats+tls": "core-plugin-nats",
    "amqp": "core-plugin-rabbitmq",
    "amqps": "core-plugin-rabbitmq",
    "google": "core-plugin-google",
    "consul": "core-plugin-consul",
    "etcd": "core-plugin-etcd",
    "aws": "core-plugin-aws",
    "azure": "core-plugin-azure",
}


def install_hint(distribution: str) -> str:
    """The two commands that install one of the project's plugins (no index serves them)."""
    return (
        f"pip install --find-links dist/wheels {distribution} (after 'nox -s wheels' in the core repository), "
        f"or pip install ./plugins/{distribution} from it"
    )


@dataclass(frozen=True, slots=True)
class Offer:
    """A registration and the plugin that offered it."""

    kind: str
    plugin: str
    registration: AdapterRegistration[Any]


@dataclass(slots=True)
class AdapterRegistry:
    """Every adapter offered by active plugins, and the conflicts found while indexing."""

    offers: list[Offer] = field(default_factory=list)
    by_scheme: dict[tuple[str, str], Offer] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, pm: pluggy.PluginManager, records: dict[str, PluginRecord]) -> AdapterRegistry:
        """Index the registrations of every active plugin."""
        registry = cls()

        def broken(plugin: str, exc: BaseException) -> None:
            if plugin in records:
                records[plugin].fail(f"registration failed: {describe(exc)}")

        for kind, spec in ADAPTER_KINDS.items():
            by_name: dict[str, Offer] = {}
            for plugin, item in collect(pm, spec.hook, broken):
                if not isinstance(item, AdapterRegistration):
                    broken(plugin, TypeError(f"{spec.hook} returned {item!r}, not AdapterRegistration"))
                    continue
                reserved = reserved_option(item)
                if reserved:
                    broken(plugin, ValueError(
                        f"{kind} adapter {item.name!r} declares an option {reserved!r}, the name of an adapter "
                        f"kind (reserved for the [options.{item.name}.{reserved}] table); rename the option"
                    ))
                    continue
                offer = Offer(kind, plugin, item)
                clash = by_name.get(item.name)
                if clash:
                    registry._conflict(records, offer, clash, f"{kind} adapter name {item.name!r}")
                    continue
                clashes = [registry.by_scheme[(kind, s)] for s in item.schemes if (kind, s) in registry.by_scheme]
                if clashes:
                    scheme = next(s for s in item.schemes if (kind, s) in registry.by_scheme)
                    registry._conflict(records, offer, clashes[0], f"{kind} URL scheme {scheme!r}")
                    continue
                by_name[item.name] = offer
                registry.offers.append(offer)
                for scheme in item.schemes:
                    registry.by_scheme[(kind, scheme)] = offer
                if plugin in records:
                    records[plugin].provides.append(f"{kind}:{item.name}")
                    records[plugin].adapters.append(ProvidedAdapter(kind, item.name, list(item.schemes)))
        return registry

    def _conflict(self, records: dict[str, PluginRecord], new: Offer, old: Offer, what: str) -> None:
        def who(plugin: str) -> str:
            record = records.get(plugin)
            dist = record.distribution if record and record.distribution else "unknown distribution"
            return f"plugin {plugin!r} ({dist})"

        message = (
            f"{what} is claimed by two plugins: {who(old.plugin)} and {who(new.plugin)}; "
            f"uninstall one of them or disable it with CORE_DISABLE_PLUGINS={new.plugin}"
        )
        self.conflicts.append(message)
        if new.plugin in records:
            records[new.plugin].fail(message)

    def check(self) -> None:
        """Raise :class:`PluginError` if two plugins claimed the same name or scheme."""
        if self.conflicts:
            raise PluginError("\n".join(self.conflicts))

    def schemes(self, kind: str) -> list[str]:
        """The URL schemes served for ``kind``, sorted."""
        return sorted(s for (k, s) in self.by_scheme if k == kind)

    def resolve(self, kind: str, url: str) -> Offer:
        """The offer serving ``url`` for ``kind``, or a :class:`PluginError` saying what to install."""
        self.check()
        scheme = urlsplit(url).scheme
        offer = self.by_scheme.get((kind, scheme))
        if offer is None:
            served = ", ".join(f"{s}:// ({self.by_scheme[(kind, s)].plugin})" for s in self.schemes(kind))
            package = KNOWN_PLUGINS.get(scheme)
            if package is None:
                known = ", ".join(sorted(set(KNOWN_PLUGINS.values())))
                hint = (
                    f"no plugin of the core project serves {scheme!r} (they are: {known}); check the URL, "
                    "or install the third-party plugin that documents it"
                )
            else:
                hint = f"{install_hint(package)}; then check it with 'core plugins list'"
            raise PluginError(
                f"{kind} URL {redacted_url(url)!r}: no installed plugin serves the scheme {scheme!r}. "
                f"Installed {kind} schemes: {served or 'none'}",
                hint=hint,
            )
        return offer

    def siblings(self, offer: Offer) -> dict[str, AdapterRegistration[Any]]:
        """The registrations of other kinds sharing ``offer``'s name (and its option table)."""
        name = offer.registration.name
        return {o.kind: o.registration for o in self.offers if o.registration.name == name and o.kind != offer.kind}

    def create(self, kind: str, url: str, options: Mapping[str, Any]) -> Any:
        """Build the adapter serving ``url`` from its ``[options.<name>]`` table ``options``.

        With an option schema, the factory gets the checked, complete values (a bad or unknown
        option is a :class:`PluginError`); factory errors become a :class:`PluginError` too.
        """
        offer = self.resolve(kind, url)
        values = adapter_options(kind, offer.plugin, offer.registration, url, options, self.siblings(offer))
        factory: Callable[[str, dict[str, Any]], Any] = offer.registration.factory
        try:
            return factory(url, values)
        except PluginError:
            raise
        except CoreError as exc:  # e.g. a ConfigError of the adapter: its message, not its class
            raise PluginError(
                f"{kind} adapter {offer.registration.name!r} (plugin {offer.plugin!r}) "
                f"could not be created for {redacted_url(url)!r}: {exc.message}", hint=exc.hint,
            ) from exc
        except Exception as exc:
            raise PluginError(
                f"{kind} adapter {offer.registration.name!r} (plugin {offer.plugin!r}) "
                f"could not be created for {redacted_url(url)!r}: {describe(exc)}"
            ) from exc
