"""The plugin host: one pluggy ``PluginManager`` holding the built-ins, the installed
plugins and the user's app module, in that order, and the adapter registry built from them."""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Iterable
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pluggy

import hookspecs
from core import __version__
from core.config import Settings
from core.errors import PluginError
from core.plugins._app import load_app
from core.plugins._collect import describe
from core.plugins._contract import check_contract
from core.plugins._discovery import discover
from core.plugins._records import PluginRecord
from core.plugins._registry import AdapterRegistry

#: The built-in plugins: registered through the same hooks as any other, before them.
BUILTINS = {
    "sqlite": "core.builtin.sqlite.plugin",
    "memory": "core.builtin.memory.plugin",
    "local": "core.builtin.local.plugin",
}
APP_PLUGIN = "app"


class PluginHost:
    """Loads plugins and answers what they provide.

    :param settings: validated configuration (allow/deny lists, strictness, app module).
    :param no_plugins: load the built-ins (and the app) only; ``--no-plugins`` (the installed
        plugins are listed as disabled).
    """

    def __init__(self, settings: Settings, *, no_plugins: bool = False) -> None:
        self.settings = settings
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        for spec in hookspecs.SPEC_CLASSES:
            self.pm.add_hookspecs(spec)
        self.records: dict[str, PluginRecord] = {}
        for name, module_name in BUILTINS.items():
            self._register(importlib.import_module(module_name), PluginRecord(
                name=name, module=module_name, distribution="core", version=__version__, builtin=True,
            ))
        found = discover(
            allow=() if no_plugins else settings["plugins.load"],
            deny=settings["plugins.disable"],
        )
        for name, record in found.records.items():
            if name in self.records:
                record.fail(f"plugin name {name!r} is taken by a built-in; rename the entry point")
                self.records[f"{name} ({record.distribution})"] = record
                continue
            module = found.modules.get(name)
            if module is not None and record.status == "active":
                error, record.warning = check_contract(module)
                if error:
                    record.fail(error)
                    self.records[name] = record
                    continue
                self._register(module, record)
            else:
                self.records[name] = record
        if settings["app"]:
            module = load_app(settings["app"], settings.root)
            self._register(module, PluginRecord(
                name=APP_PLUGIN, module=module.__name__, distribution="(your app)", version="",
            ))
        self.registry = AdapterRegistry.build(self.pm, self.records)
        if settings["plugins.strict"]:
            self.raise_for_errors()

    def _register(self, module: ModuleType, record: PluginRecord) -> None:
        self.records[record.name] = record
        try:
            self.pm.register(module, name=record.name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            record.fail(f"registration failed: {describe(exc)}")
            return
        callers = self.pm.get_hookcallers(module) or []
        unknown = sorted((caller for caller in callers if caller.spec is None), key=lambda caller: caller.name)
        if unknown:
            problems = "; ".join(self._unknown_hook(caller, module) for caller in unknown)
            self.pm.unregister(module)
            if record.name == APP_PLUGIN:
                raise PluginError(
                    f"your app {module.__file__ or module.__name__} implements hooks core does not have: {problems}",
                    hint="rename the function to the hook it means (docs/hooks.md lists every hook)",
                )
            record.fail(f"implements unknown hooks {[c.name for c in unknown]}: {problems}")
            return
        record.hooks = sorted(caller.name for caller in callers)

    def _unknown_hook(self, caller: pluggy.HookCaller, module: ModuleType) -> str:
        """``name (file:line)``, and the nearest hook name if there is one, else a version hint."""
        impls = [impl for impl in caller.get_hookimpls() if impl.plugin is module]
        where = ""
        if impls:
            function = inspect.unwrap(impls[0].function)
            code = getattr(function, "__code__", None)
            if code is not None:
                where = f" ({code.co_filename}:{code.co_firstlineno})"
        hooks = [name for name, other in vars(self.pm.hook).items() if getattr(other, "spec", None) is not None]
        near = difflib.get_close_matches(caller.name, hooks, n=1, cutoff=0.6)
        if near:
            return f"{caller.name!r}{where} is not a hook: did you mean {near[0]!r}?"
        return f"{caller.name!r}{where} is not a hook of core {__version__} (is the plugin newer than core?)"

    def broken(self) -> list[PluginRecord]:
        """The plugins that failed to load (their records say why)."""
        return [r for r in self.records.values() if r.status == "error"]

    def raise_for_errors(self) -> None:
        """Raise :class:`PluginError` listing every broken plugin (strict mode)."""
        broken = self.broken()
        if broken:
            lines = "\n".join(f"  {r.name} ({r.distribution}): {r.error}" for r in broken)
            raise PluginError(
                f"{len(broken)} plugin(s) failed to load (strict mode):\n{lines}",
                hint="fix or uninstall them, or unset CORE_STRICT_PLUGINS to list them and go on",
            )

    def create_all(self, kinds: Iterable[str]) -> dict[str, Any]:
        """Build the configured adapter of each kind (``None`` if unset); every kind whose URL or
        options are wrong is reported at once, in one :class:`PluginError`."""
        built: dict[str, Any] = {}
        problems: list[PluginError] = []
        for kind in kinds:
            try:
                built[kind] = self.create(kind)
            except PluginError as exc:
                problems.append(exc)
        if len(problems) == 1:
            raise problems[0]
        if problems:
            lines = "\n".join(f"  - {p.message}" + (f"\n      hint: {p.hint}" if p.hint else "") for p in problems)
            raise PluginError(f"{len(problems)} adapters cannot be built:\n{lines}")
        return built

    def store_supervisor_url(self) -> str:
        """The supervisor that follows the store: the store's URL when a supervisor adapter
        serves its scheme (leases beside the data, shared by every process using it), else
        ``local://`` (one process)."""
        store = self.settings["store"]
        self.registry.check()
        served = ("supervisor", urlsplit(store).scheme) in self.registry.by_scheme
        return store if served else "local://"

    def create(self, kind: str, url: str | None = None) -> Any:
        """Build the configured adapter of ``kind`` (``store``, ``pubsub``…), or ``None`` if unset."""
        url = self.settings[kind] if url is None else url
        if kind == "supervisor" and url == "store":
            url = self.store_supervisor_url()
        if not url:
            return None
        offer = self.registry.resolve(kind, url)
        options = self.settings.section(offer.registration.name)
        return self.registry.create(kind, self.settings.resolve_url(url), options)
