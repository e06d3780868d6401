"""``core generate plugin``: write a plugin distribution that installs, registers itself and
runs the conformance kit, with a stub that fails the kit until it is implemented.

The files are :class:`string.Template` texts, package data under ``core/scaffold/templates/``
(``<file>.tmpl``, read with :mod:`importlib.resources`). The adapter stubs' methods are
generated from the contract's protocols (signatures and docstrings of :class:`~hookspecs.Store`
and the others), so they never drift from ``hookspecs``.
"""

from __future__ import annotations

import inspect
import keyword
import re
import textwrap
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

import hookspecs
from core import __version__
from core.errors import CoreError

KINDS = (*hookspecs.ADAPTER_KINDS, "source", "destination")
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_IMPORTS = {"Sequence": "collections.abc", "AsyncIterator": "collections.abc", "datetime": "datetime"}


@dataclass(frozen=True, slots=True)
class PluginSpec:
    """What to generate: the plugin's short ``name`` and the ``kind`` of thing it provides."""

    name: str
    kind: str

    @property
    def distribution(self) -> str:
        return f"core-plugin-{self.name}"

    @property
    def package(self) -> str:
        return f"core_plugin_{self.name.replace('-', '_')}"

    @property
    def camel(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("-"))

    @property
    def protocol(self) -> str:
        adapter = hookspecs.ADAPTER_KINDS.get(self.kind)
        return adapter.protocol.__name__ if adapter else self.kind.capitalize()

    @property
    def cls(self) -> str:
        return f"{self.camel}{self.protocol}"

    def values(self) -> dict[str, str]:
        major, minor = (int(p) for p in __version__.split(".")[:2])
        upper = f"{major + 1}.0" if major else f"0.{minor + 1}"
        return {
            "name": self.name, "kind": self.kind, "distribution": self.distribution, "package": self.package,
            "camel": self.camel, "protocol": self.protocol, "cls": self.cls, "snake": self.name.replace("-", "_"),
            "core_requirement": f"core>={major}.{minor},<{upper}",
            "core_testing_requirement": f"core[testing]>={major}.{minor},<{upper}",
        }


def template(name: str) -> Template:
    """The template of the file ``name`` (``templates/<name>.tmpl``, shipped in the wheel)."""
    return Template(resources.files("core.scaffold").joinpath("templates", f"{name}.tmpl").read_text())


def check_spec(name: str, kind: str) -> PluginSpec:
    """Validate the plugin name and kind, or raise a :class:`CoreError` saying what is allowed."""
    if name.startswith("core-plugin-"):
        name = name.removeprefix("core-plugin-")
    if not _NAME.match(name) or keyword.iskeyword(name.replace("-", "_")):
        raise CoreError(
            f"plugin name {name!r} is not valid",
            hint="use lower-case letters and digits, words joined by '-', starting with a letter (e.g. 'my-db')",
        )
    if kind not in KINDS:
        raise CoreError(f"plugin kind {kind!r} is not valid", hint=f"choose one of: {', '.join(KINDS)}")
    return PluginSpec(name, kind)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _stub_method(spec: PluginSpec, name: str, func: object) -> tuple[str, set[str]]:
    """The source of one stub method, and the names its annotations use."""
    signature = inspect.signature(func)  # type: ignore[arg-type]
    params, star = [], False
    for param in signature.parameters.values():
        if param.kind is param.KEYWORD_ONLY and not star:
            params.append("*")
            star = True
        text = param.name if param.annotation is param.empty else f"{param.name}: {param.annotation}"
        params.append(text if param.default is param.empty else f"{text} = {param.default!r}")
    returns = signature.return_annotation
    paragraph = " ".join((inspect.getdoc(func) or name).split("\n\n")[0].split())
    head = paragraph.split(". ")[0].rstrip(".") + "."
    used = set(re.findall(r"[A-Za-z_]\w*", " ".join(params) + " " + str(returns)))
    if name in ("open", "close"):
        body = f'        """{head}"""\n'
    else:
        message = f"{spec.distribution}: implement {spec.cls}.{name}(): {head.rstrip('.')}"
        chunks = "\n".join(f"            {_quote(part)}" for part in textwrap.wrap(message, 80, drop_whitespace=False))
        body = f'        """{head}"""\n        raise NotImplementedError(\n{chunks}\n        )\n'
    return f"    async def {name}({', '.join(params)}) -> {returns}:\n{body}", used


def adapter_module(spec: PluginSpec) -> str:
    """The stub adapter class: every method of the kind's protocol, raising until written."""
    protocol = getattr(hookspecs, spec.protocol)
    methods, used = [], set()
    for name, func in inspect.getmembers(protocol, inspect.isfunction):
        if name.startswith("_"):
            continue
        source, names = _stub_method(spec, name, func)
        methods.append(source)
        used |= names
    stdlib = {f"from {_IMPORTS[n]} import {n}" for n in used if n in _IMPORTS} | {"from typing import Any"}
    contract = sorted(n for n in used if n not in _IMPORTS and hasattr(hookspecs, n) and n[0].isupper())
    lines = sorted(stdlib) + ([f"\nfrom hookspecs import {', '.join(contract)}"] if contract else [])
    ordered = sorted(methods, key=lambda m: (not m.startswith("    async def open"), not m.startswith(
        "    async def close"), m))
    return template("adapter.py").substitute(spec.values(), imports="\n".join(lines), methods="\n".join(ordered))


def render(spec: PluginSpec, *, in_repo: bool) -> dict[str, str]:
    """Every file of the plugin, by path relative to its directory."""
    values = spec.values()
    adapter = spec.kind in hookspecs.ADAPTER_KINDS
    module = "adapter" if adapter else spec.kind
    ruff = '\n[tool.ruff]\nextend = "../../pyproject.toml"\n' if in_repo else ""
    src = f"src/{spec.package}"
    files = {
        "pyproject.toml": template("pyproject.toml").substitute(values, ruff=ruff),
        "README.md": template("README.md").substitute(values, module=module),
        f"{src}/__init__.py": f'"""{spec.distribution}: a {spec.kind} plugin for core."""\n',
        f"{src}/py.typed": "",
        f"{src}/plugin.py": template("plugin_adapter.py" if adapter else "plugin_pipeline.py").substitute(values),
        "tests/__init__.py": "",
    }
    if adapter:
        files[f"{src}/adapter.py"] = adapter_module(spec)
        files[f"tests/test_{spec.kind}.py"] = template("test_adapter.py").substitute(values)
    else:
        files[f"{src}/{spec.kind}.py"] = template(f"{spec.kind}.py").substitute(values)
        files[f"tests/test_{spec.kind}.py"] = template(f"test_{spec.kind}.py").substitute(values)
    return files


def generate(spec: PluginSpec, target: Path, *, in_repo: bool) -> list[Path]:
    """Write the plugin into ``target`` (which must not exist or be empty); return the files."""
    if target.exists() and any(target.iterdir()):
        raise CoreError(f"{target} already exists and is not empty", hint="choose another --path or remove it")
    written = []
    for relative, text in render(spec, in_repo=in_repo).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
