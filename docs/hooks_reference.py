"""Writes docs/hooks.md from the hookspecs' docstrings, so the reference never drifts from
the contract (tests/test_hookspecs.py checks the file is current).

Run: ``python docs/hooks_reference.py``
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import hookspecs

HEADER = """# Hook reference

Every hook a plugin can implement. Hooks are declared in the `hookspecs` package (one module per
adapter kind), take keyword arguments, and are synchronous: an adapter hook returns registration
records whose factories build objects with `async` methods. Implement a hook with
`@hookimpl` from `hookspecs` in your plugin's module; the function name is the hook name, and you
may accept only the arguments you need.

This page is generated from the docstrings by `python docs/hooks_reference.py`.
"""


def render() -> str:
    """The whole page."""
    parts = [HEADER]
    for spec_class in hookspecs.SPEC_CLASSES:
        module = inspect.getmodule(spec_class)
        assert module is not None
        parts.append(f"\n## `{module.__name__}`\n\n{inspect.getdoc(module)}\n")
        for name, func in inspect.getmembers(spec_class, inspect.isfunction):
            if not name.startswith("core_"):
                continue
            params = ", ".join(p for p in inspect.signature(func).parameters if p != "self")
            parts.append(f"\n### `{name}({params})`\n\n{inspect.getdoc(func)}\n")
    return "".join(parts)


if __name__ == "__main__":
    target = Path(__file__).with_name("hooks.md")
    target.write_text(render())
    sys.stdout.write(f"wrote {target}\n")
