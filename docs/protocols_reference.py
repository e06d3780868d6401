"""Writes docs/reference/protocols.md from the ``hookspecs`` package: every protocol a plugin
implements (Store, PubSub, Supervisor…), every data type it receives or returns (Job, Event,
Then, Claim…), the enums, errors and helpers, with their signatures and docstrings, so the
reference never drifts from the contract (``docs/check.py`` checks the page is current).

Run: ``python docs/protocols_reference.py``
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hookspecs

TARGET = Path(__file__).resolve().parent / "reference" / "protocols.md"
HEADER = f"""# Protocols and data types

What the `hookspecs` package (contract `{hookspecs.CONTRACT}`, see
[Compatibility](../compatibility.md)) gives a plugin: the **protocols** an adapter implements,
the **data types** that cross the contract, the **base classes** of sources, triggers,
destinations and actions, and the **enums**, **errors** and **helpers**. Import them from
`hookspecs`; the hooks that register them are in the [hook reference](../hooks.md), the helpers
of the adapter toolkit in [Plugin helpers](../plugin-helpers.md).

This page is generated from the signatures and docstrings by `python docs/protocols_reference.py`.
"""
ROLE = re.compile(r":(?:class|meth|func|attr|data|exc|mod):`~?([^`]+)`")


def markdown(doc: str | None) -> str:
    """A docstring as Markdown: RST roles and double backquotes as code, ``::`` blocks fenced."""
    text = ROLE.sub(r"`\1`", doc or "(no docstring)").replace("``", "`")
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::") and i + 1 < len(lines):
            out.append(line.rstrip()[:-1].rstrip(":") + ":" if line.strip() != "::" else "")
            block: list[str] = []
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            while block and not block[0].strip():
                block.pop(0)
            out += ["", "```python", *inspect.cleandoc("\n".join(block)).splitlines(), "```", ""]
            continue
        out.append(line)
        i += 1
    return fields("\n".join(out)).strip()


FIELD = re.compile(r"^:(param|cvar|ivar|raises?|returns?|return)\s*([^:]*):\s*(.*)$")


def fields(text: str) -> str:
    """RST field lists (``:param x: …``, ``:return: …``) as a Markdown list."""
    out: list[str] = []
    in_field = False
    for line in text.splitlines():
        found = FIELD.match(line)
        if found:
            role, name, rest = found.groups()
            label = f"`{name.strip()}`" if name.strip() and role in ("param", "cvar", "ivar") else (
                f"raises `{name.strip()}`" if role.startswith("raise") else "returns")
            out.append(f"- {label}: {rest}")
            in_field = True
        elif in_field and line.startswith((" ", "\t")) and line.strip():
            out[-1] += " " + line.strip()
        else:
            in_field = False
            out.append(line)
    return "\n".join(out)


def annotation(value: Any) -> str:
    return value if isinstance(value, str) else inspect.formatannotation(value)


def signature(obj: Callable[..., Any]) -> str:
    """``(a: int, b: str = 'x') -> T`` from the source's annotations (strings kept as written)."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(…)"
    params = []
    star = False
    for param in sig.parameters.values():
        if param.kind is param.KEYWORD_ONLY and not star:
            params.append("*")
            star = True
        stars: dict[inspect._ParameterKind, str] = {param.VAR_POSITIONAL: "*", param.VAR_KEYWORD: "**"}
        text = stars.get(param.kind, "") + param.name
        star = star or param.kind is param.VAR_POSITIONAL
        if param.annotation is not param.empty:
            text += f": {annotation(param.annotation)}"
        if param.default is not param.empty:
            default = param.default
            if isinstance(default, enum.Enum):
                default = f"{type(default).__name__}.{default.name}"
            elif type(default).__name__ == "_HAS_DEFAULT_FACTORY_CLASS":
                default = "<factory>"
            else:
                default = repr(default)
            text += f" = {default}"
        params.append(text)
    returned = "" if sig.return_annotation is sig.empty else f" -> {annotation(sig.return_annotation)}"
    return f"({', '.join(params)}){returned}"


def kind(obj: Any) -> str:
    if not isinstance(obj, type):
        return "function" if callable(obj) else ""
    if getattr(obj, "_is_protocol", False):
        return "protocol"
    if issubclass(obj, BaseException):
        return "error"
    if issubclass(obj, enum.Enum):
        return "enum"
    if dataclasses.is_dataclass(obj):
        return "data type"
    return "base class"


SECTIONS = [("protocol", "Protocols"), ("data type", "Data types"), ("base class", "Base classes"),
            ("enum", "Enums"), ("error", "Errors"), ("function", "Helpers")]


def methods(cls: type) -> Iterator[tuple[str, Any]]:
    """The public methods and properties ``cls`` declares itself (not inherited ones)."""
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property) or inspect.isfunction(value) or isinstance(value, classmethod | staticmethod):
            yield name, value


def member(name: str, value: Any) -> str:
    if isinstance(value, property):
        return f"- `{name}` (property): {markdown(inspect.getdoc(value)).splitlines()[0] if value.__doc__ else ''}"
    func = value.__func__ if isinstance(value, classmethod | staticmethod) else value
    prefix = "async " if inspect.iscoroutinefunction(func) else ""
    doc = markdown(inspect.getdoc(func)) if func.__doc__ else ""
    body = ("\n\n" + "\n".join("    " + line if line else "" for line in doc.splitlines())) if doc else ""
    return f"- `{prefix}{name}{signature(func)}`{body}"


def entry(name: str, obj: Any) -> str:
    what = kind(obj)
    if what == "enum":
        values = ", ".join(f"`{m.value}`" for m in obj)
        return f"### `{name}`\n\n{markdown(inspect.getdoc(obj))}\n\nValues: {values}.\n"
    if what == "function":
        return f"### `{name}{signature(obj)}`\n\n{markdown(inspect.getdoc(obj))}\n"
    called = signature(obj).removesuffix(" -> None") if what in ("data type", "error") else ""
    head = f"### `{name}{called}`"
    parts = [f"{head}\n\n{markdown(obj.__doc__ and inspect.getdoc(obj))}\n"]
    listed = [member(n, v) for n, v in methods(obj)] if what in ("protocol", "base class", "data type") else []
    if listed:
        parts.append("\n" + "\n".join(listed) + "\n")
    return "".join(parts)


def constant(value: Any) -> str:
    """A constant's value for a table cell: enum members by value, classes by name."""
    if isinstance(value, frozenset | tuple):
        items = sorted(value, key=str) if isinstance(value, frozenset) else list(value)
        return ", ".join(constant(item) for item in items)
    if isinstance(value, enum.Enum):
        return f"`{value.value}`"
    if isinstance(value, type):
        return f"`{value.__name__}`"
    return f"`{value!r}`"


def constants() -> str:
    rows = ["| name | value |", "| --- | --- |"]
    for name in sorted(hookspecs.__all__):
        obj = getattr(hookspecs, name)
        if isinstance(obj, str | int | float | tuple | frozenset):
            rows.append(f"| `{name}` | {constant(obj)} |")
    return "\n## Constants\n\n" + "\n".join(rows) + "\n"


def render() -> str:
    """The whole page."""
    parts = [HEADER]
    public = [(name, getattr(hookspecs, name)) for name in sorted(hookspecs.__all__)]
    for key, title in SECTIONS:
        found = [(name, obj) for name, obj in public if kind(obj) == key and name not in ("hookimpl", "hookspec")]
        parts.append(f"\n## {title}\n\n" + "\n".join(entry(name, obj) for name, obj in found))
    parts.append(constants())
    return "".join(parts)


if __name__ == "__main__":
    TARGET.write_text(render())
    sys.stdout.write(f"wrote {TARGET}\n")
