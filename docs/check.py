"""Checks the documentation against the code; the ``docs`` nox session runs it.

1. every hook of the contract (``hookspecs.SPEC_CLASSES``) is named in some page of docs/;
2. the generated pages are current (``hooks_reference.py``, ``config_reference.py``);
3. every Python block marked runnable runs: a fenced ``python`` block right after a line
   ``<!-- run -->`` is executed by this interpreter in a fresh temporary directory.

Run: ``python docs/check.py``; it prints each problem and exits 1 if there is any.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import hookspecs

DOCS = Path(__file__).resolve().parent
RUNNABLE = re.compile(r"^<!-- run -->\n```python\n(.*?)^```", re.M | re.S)


def _module(name: str) -> ModuleType | None:
    path = DOCS / f"{name}.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"docs_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
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


def failing_examples(pages: dict[Path, str]) -> Iterator[str]:
    for path, text in pages.items():
        for match in RUNNABLE.finditer(text):
            line = text.count("\n", 0, match.start()) + 2
            with tempfile.TemporaryDirectory() as cwd:
                done = subprocess.run([sys.executable, "-c", match.group(1)], cwd=cwd, capture_output=True,
                                      text=True, timeout=120, check=False)
            where = f"{path.relative_to(DOCS.parent)}:{line}"
            if done.returncode != 0:
                yield f"{where}: the runnable example failed:\n{done.stdout}{done.stderr}"
            else:
                print(f"ran {where}")


def main() -> int:
    pages = {path: path.read_text() for path in sorted(DOCS.glob("*.md"))}
    problems = [*undocumented_hooks(pages), *stale_generated_pages(), *failing_examples(pages)]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    print(f"{len(pages)} pages, {len(hook_names())} hooks checked: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
