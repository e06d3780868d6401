"""Writes the adapters' option tables from their registrations' schemas
(:attr:`hookspecs.AdapterRegistration.options`), so each page lists exactly the options the
host accepts.

Each table sits between ``<!-- options KIND:NAME -->`` and ``<!-- /options KIND:NAME -->`` in
its plugin's page: the built-ins' in configuration.md, a plugin's in ``<entry point name>.md``
(postgres.md, nats.md...). Plugins are read from ``plugins/*/pyproject.toml`` and imported
from their source tree when not installed (their plugin modules import only ``hookspecs``).
A registration without a schema keeps what its markers hold. ``docs/check.py`` fails when a
registration with a schema has no current table.

Run: ``python docs/options_reference.py``
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.plugins import BUILTINS
from core.testing._memory_plugin import PLUGIN_NAME as TEST_KIT
from hookspecs import ADAPTER_KINDS, AdapterRegistration, Option

DOCS = Path(__file__).resolve().parent
PLUGINS = DOCS.parent / "plugins"
TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (tuple, "list"),
         (list, "list"), (Mapping, "table"))


@dataclass(frozen=True, slots=True)
class Adapter:
    """One registration and the page its option table belongs in."""

    page: Path
    kind: str
    registration: AdapterRegistration[Any]
    shared: bool  # another adapter of the plugin has the same name (one table for both)

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.registration.name}"

    def markers(self) -> re.Pattern[str]:
        label = re.escape(self.label)
        return re.compile(rf"(<!-- options {label} -->\n).*?(<!-- /options {label} -->)", re.S)


def _plugin_modules() -> Iterator[tuple[Path, str]]:
    """``(page, plugin module)`` of every built-in and every plugin under plugins/."""
    for name, module in BUILTINS.items():
        if name != TEST_KIT:  # added under pytest only; its memory:// store has no options
            yield DOCS / "configuration.md", module
    for pyproject in sorted(PLUGINS.glob("*/pyproject.toml")):
        entries = tomllib.loads(pyproject.read_text())["project"].get("entry-points", {}).get("core.plugins", {})
        for name, module in entries.items():
            if importlib.util.find_spec(module.split(".")[0]) is None:
                sys.path.append(str(pyproject.parent / "src"))
            yield DOCS / f"{name}.md", module


def adapters() -> list[Adapter]:
    """Every adapter registration of the built-ins and the plugins, with its page."""
    found = []
    for page, module_name in _plugin_modules():
        module = importlib.import_module(module_name)
        offered = [(kind, registration) for kind, spec in ADAPTER_KINDS.items()
                   for registration in (getattr(module, spec.hook)() if hasattr(module, spec.hook) else [])]
        names = [registration.name for _, registration in offered]
        found += [Adapter(page, kind, registration, names.count(registration.name) > 1)
                  for kind, registration in offered]
    return found


def _type(option: Option) -> str:
    """The option's type, from its default, or (unset by default) from what a sample converts to."""
    sample = option.default
    if sample is None:
        try:
            sample = option.convert("1")
        except (TypeError, ValueError):
            return "-"
    return next((name for cls, name in TYPES if isinstance(sample, cls)), "-")


def _default(option: Option) -> str:
    value = option.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple | list | str | Mapping):
        return f"`{json.dumps(list(value) if isinstance(value, tuple) else value)}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or "-"


def table(adapter: Adapter) -> str:
    """The Markdown of one adapter's options: where they go, then a row per option."""
    registration, kind = adapter.registration, adapter.kind
    schema = registration.options or {}
    if not schema:
        return f"The {kind} adapter `{registration.name}` takes no options.\n"
    where = f"`[options.{registration.name}]`"
    if adapter.shared:
        where += f" (shared by the `{registration.name}` adapters) or `[options.{registration.name}.{kind}]` (this one)"
    if registration.driver_query:
        lines = [f"Set in {where}; the URL query is the driver's, passed on untouched."]
    else:
        lines = [f"Set in {where} or in the URL query (`{registration.schemes[0]}://...?option=value`), which wins."]
    lines += ["", "| option | type | default | what it does | allowed |", "| --- | --- | --- | --- | --- |"]
    for name, option in schema.items():
        secret = " (secret: never shown)" if option.secret else ""
        lines.append(f"| `{name}`{secret} | {_type(option)} | {_default(option)} | {_cell(option.help)} | "
                     f"{_cell(option.allowed)} |")
    return "\n".join(lines) + "\n"


def render(page: Path, text: str, found: list[Adapter]) -> str:
    """``text`` of ``page`` with the table of each of its adapters with a schema replaced."""
    for adapter in found:
        if adapter.page == page and adapter.registration.options is not None:
            text = adapter.markers().sub(lambda m, a=adapter: m.group(1) + table(a) + m.group(2), text)
    return text


def problems() -> Iterator[str]:
    """What is missing or stale: for ``docs/check.py``."""
    found = adapters()
    for page in sorted({a.page for a in found}):
        text = page.read_text() if page.is_file() else ""
        for adapter in found:
            if adapter.page == page and adapter.registration.options is not None and not adapter.markers().search(text):
                yield (f"docs/{page.name} has no option table for the {adapter.label} adapter: add the lines "
                       f"'<!-- options {adapter.label} -->' and '<!-- /options {adapter.label} -->', then run "
                       "python docs/options_reference.py")
        if text and render(page, text, found) != text:
            yield f"docs/{page.name}: an option table is out of date: run python docs/options_reference.py"


def main() -> None:
    found = adapters()
    for page in sorted({a.page for a in found if a.page.is_file()}):
        text = page.read_text()
        rendered = render(page, text, found)
        if rendered != text:
            page.write_text(rendered)
            sys.stdout.write(f"wrote {page}\n")


if __name__ == "__main__":
    main()
