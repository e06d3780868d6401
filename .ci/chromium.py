"""Make sure Debian's headless-capable Chromium is installed for the browser tests.

    python .ci/chromium.py      # prints the executable's path

Playwright's own browser downloads cannot work on the project's machines (no access to its
CDN), so the tests drive Debian's ``chromium`` package: when ``/usr/bin/chromium`` is missing,
this runs ``apt-get update`` and ``apt-get install -y chromium`` (as root, or through sudo).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


def ensure() -> Path:
    """The Chromium executable, installed first if missing; exits with why if it cannot be."""
    if CHROMIUM.exists():
        return CHROMIUM
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if prefix and shutil.which("sudo") is None:
        sys.exit(f"{CHROMIUM} is missing and this user cannot install it: run 'apt-get install -y chromium' as root")
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        print("+", " ".join(prefix + command), flush=True)
        if subprocess.run(prefix + command, env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"}).returncode:
            sys.exit(f"'{' '.join(command)}' failed: see its output above")
    if not CHROMIUM.exists():
        sys.exit(f"the chromium package did not install {CHROMIUM}")
    return CHROMIUM


if __name__ == "__main__":
    print(ensure())
