"""Writes the key table of docs/configuration.md from ``core.config.KEYS`` (between the
``<!-- keys -->`` markers), so the page lists exactly the keys the code accepts.

Run: ``python docs/config_reference.py``
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from core.config import KEYS

PAGE = Path(__file__).with_name("configuration.md")
MARKERS = re.compile(r"(<!-- keys -->\n).*?(<!-- /keys -->)", re.S)


def table() -> str:
    """The Markdown table of every key."""
    rows = ["| key | environment | default | what |", "| --- | --- | --- | --- |"]
    for key in KEYS:
        default = "(none)" if key.default in (None, "") else f"`{key.default!r}`"
        rows.append(f"| `{key.name}` | `{key.env}` | {default} | {key.help} |")
    return "\n".join(rows) + "\n"


def render(text: str) -> str:
    """The page with its key table replaced."""
    return MARKERS.sub(lambda m: m.group(1) + table() + m.group(2), text)


if __name__ == "__main__":
    PAGE.write_text(render(PAGE.read_text()))
    sys.stdout.write(f"wrote {PAGE}\n")
