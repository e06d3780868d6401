#!/usr/bin/env python3
"""Check, inside a virtualenv, that distributions were installed from the wheels of a folder.

    python .ci/installed_from.py dist/wheels core-plugin-postgres [more…]

Run by ``nox -s wheels`` with the fresh virtualenv's interpreter after ``pip install
--find-links dist/wheels core-plugin-postgres``: ``core`` and each named distribution must be
the wheel of the folder (every file the wheel's ``RECORD`` lists installed with the same hash,
not an editable install or another index's release of the same name), and ``core plugins list
--json`` must show each plugin active. Standard library only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from importlib.metadata import distribution
from pathlib import Path


def problems(folder: Path, names: list[str]) -> list[str]:
    found = []
    for name in ["core", *names]:
        installed = distribution(name)
        wheel = folder / f"{name.replace('-', '_')}-{installed.version}-py3-none-any.whl"
        if not wheel.is_file():
            found.append(f"{name} {installed.version} is installed, but {folder} has no {wheel.name}")
            continue
        with zipfile.ZipFile(wheel) as archive:
            record = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
            built = {line for line in archive.read(record).decode().splitlines() if ".dist-info/" not in line}
        have = set((installed.read_text("RECORD") or "").splitlines())
        if built - have:
            found.append(f"{name} is not the wheel {wheel.name}: {len(built - have)} of its files differ "
                         f"(first: {sorted(built - have)[0]})")
    core = Path(sys.executable).with_name("core")
    listing = subprocess.run([str(core), "plugins", "list", "--json"], capture_output=True, text=True,
                             check=True, timeout=120).stdout
    plugins = {entry["distribution"]: entry for entry in json.loads(listing)}
    for name in names:
        if plugins.get(name, {}).get("status") != "active":
            found.append(f"core plugins list does not show {name} active: {plugins.get(name, sorted(plugins))}")
    return found


def main() -> int:
    folder, names = Path(sys.argv[1]), sys.argv[2:]
    found = problems(folder, names)
    for problem in found:
        print(f"error: {problem}", file=sys.stderr)
    if not found:
        print(f"installed from {folder}: core, {', '.join(names)}; core plugins list shows them active")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
