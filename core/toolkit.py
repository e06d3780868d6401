"""The adapter toolkit's boundary: which parts of ``core`` a plugin may import.

A plugin imports the contract (``hookspecs``) and, of ``core``, only these packages by their
top-level name. Everything else of ``core`` is the engine, private. The lint session enforces it
with ruff's banned-api table in ``pyproject.toml``, which :func:`banned_modules` computes
(``tests/test_import_rule.py`` fails when the table is stale).
"""

from __future__ import annotations

from pathlib import Path

#: The packages of ``core`` a plugin may import (each documented in docs/plugin-helpers.md).
TOOLKIT = ("core.testing", "core.sqlstore", "core.brokers")


def _children(package: Path, dotted: str) -> list[str]:
    """The modules and packages directly inside ``package`` (private ones included)."""
    names = [p.stem for p in package.glob("*.py") if p.stem != "__init__"]
    names += [p.name for p in package.iterdir() if (p / "__init__.py").is_file()]
    return [f"{dotted}.{name}" for name in sorted(set(names))]


def banned_modules(root: Path | None = None) -> list[str]:
    """Every ``core`` module a plugin may not import: the engine's modules, and the submodules
    of the toolkit packages (a toolkit name has one import path, its package)."""
    root = root or Path(__file__).resolve().parent
    banned = []
    for module in _children(root, "core"):
        if module in TOOLKIT:
            banned += _children(root / module.removeprefix("core."), module)
        else:
            banned.append(module)
    return banned


def banned_api_table() -> str:
    """The ``banned-api`` table of ``pyproject.toml`` as it must read (paste it when stale)."""
    message = "plugins import only the contract (hookspecs) and the toolkit: " + ", ".join(TOOLKIT)
    lines = ["[tool.ruff.lint.flake8-tidy-imports.banned-api]"]
    lines += [f'"{module}".msg = "{message}"' for module in banned_modules()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(banned_api_table(), end="")
