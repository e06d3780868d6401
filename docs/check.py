"""Checks the documentation against the code; the ``docs`` nox session runs it.

1. every hook of the contract (``hookspecs.SPEC_CLASSES``) is named in some page of docs/;
2. the generated pages are current (``hooks_reference.py``, ``config_reference.py``, and the
   :data:`GENERATED` pages of docs/reference/: protocols, admin API routes, metrics), every
   adapter with an option schema has a current option table (``options_reference.py``) and
   ``cli.md`` names every command and option (``cli_reference.py``), and ``plugin-helpers.md``
   every public name of the toolkit packages (``core/toolkit.py``);
3. every Python block marked runnable runs, in a fresh temporary directory: a fenced
   ``python`` block right after a line ``<!-- run -->`` is executed as a script, and one
   after ``<!-- run pytest -->`` is saved as ``test_example.py`` and must pass under pytest.

Run: ``python docs/check.py``; it prints each problem and exits 1 if there is any.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Check the checkout this file is in, not another installed copy of core and its plugins (an
# editable install elsewhere): its packages first, here and in the examples' processes.
_HERE = [str(ROOT), *sorted(str(src) for src in ROOT.glob("plugins/*/src"))]
sys.path[:0] = _HERE
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [*_HERE, os.environ.get("PYTHONPATH")]))

import core  # noqa: E402
import hookspecs  # noqa: E402
from core.toolkit import TOOLKIT  # noqa: E402

#: Generators with ``TARGET`` (a page under docs/reference/) and ``render()``.
GENERATED = ("protocols_reference", "admin_api_reference", "metrics_reference")

RUNNABLE = re.compile(r"^<!-- run( pytest)? -->\n```python\n(.*?)^```", re.M | re.S)


def _module(name: str) -> ModuleType | None:
    path = DOCS / f"{name}.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"docs_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def hook_names() -> list[str]:
    return [name for cls in hookspecs.SPEC_CLASSES
            for name, _ in inspect.getmembers(cls, inspect.isfunction) if name.startswith("core_")]


def undocumented_hooks(pages: dict[Path, str]) -> Iterator[str]:
    text = "\n".join(pages.values())
    for name in hook_names():
        if name not in text:
            yield f"hook {name} is not named in any page of docs/"


def stale_generated_pages() -> Iterator[str]:
    hooks = _module("hooks_reference")
    if hooks is not None and (DOCS / "hooks.md").read_text() != hooks.render():
        yield "docs/hooks.md is out of date: run python docs/hooks_reference.py"
    config = _module("config_reference")
    if config is not None:
        page = (DOCS / "configuration.md").read_text()
        if config.render(page) != page:
            yield "docs/configuration.md is out of date: run python docs/config_reference.py"
    options = _module("options_reference")
    if options is not None:
        yield from options.problems()
    for name in GENERATED:
        page = _module(name)
        if page is not None and (not page.TARGET.is_file() or page.TARGET.read_text() != page.render()):
            yield f"{page.TARGET.relative_to(DOCS.parent)} is out of date: run python docs/{name}.py"
    helpers = (DOCS / "plugin-helpers.md").read_text()
    for package in TOOLKIT:
        for name in getattr(importlib.import_module(package), "__all__", ()):
            if f"`{name}" not in helpers:
                yield f"docs/plugin-helpers.md does not name {package}.{name} (core/toolkit.py's TOOLKIT)"
    cli = _module("cli_reference")
    if cli is not None:
        for what in cli.missing((DOCS / "cli.md").read_text()):
            yield f"docs/cli.md does not document the {what}: run python docs/cli_reference.py"


def run_example(code: str, *, as_test: bool) -> subprocess.CompletedProcess[str]:
    """Run one example in a fresh directory: as a script, or as a pytest module."""
    with tempfile.TemporaryDirectory() as cwd:
        if as_test:
            Path(cwd, "test_example.py").write_text(code)
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"]
        else:
            command = [sys.executable, "-c", code]
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def failing_examples(pages: dict[Path, str]) -> Iterator[str]:
    for path, text in pages.items():
        for match in RUNNABLE.finditer(text):
            line = text.count("\n", 0, match.start()) + 2
            done = run_example(match.group(2), as_test=bool(match.group(1)))
            where = f"{path.relative_to(DOCS.parent)}:{line}"
            if done.returncode != 0:
                yield f"{where}: the runnable example failed:\n{done.stdout}{done.stderr}"
            else:
                print(f"ran {where}")


def foreign_checkout() -> Iterator[str]:
    """The packages imported are not this checkout's (the check would prove another copy);
    the plugins' come from this checkout too, first on the path."""
    for module in (core, hookspecs):
        if not Path(module.__file__ or "").resolve().is_relative_to(ROOT):
            yield f"{module.__name__} is imported from {module.__file__}, not from this checkout {ROOT}"


def main() -> int:
    pages = {path: path.read_text() for path in sorted(DOCS.rglob("*.md"))}
    problems = [*foreign_checkout()]
    problems += [*undocumented_hooks(pages), *stale_generated_pages(), *failing_examples(pages)]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    print(f"{len(pages)} pages, {len(hook_names())} hooks checked: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
