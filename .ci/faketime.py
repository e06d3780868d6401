"""Make sure Debian's libfaketime is installed for the chaos test of cron under clock skew.

    python .ci/faketime.py      # prints the library's path

The test of property 11 (``tests/test_chaos_cron_clocks.py``) gives each gateway process a
clock of its own by preloading ``libfaketime.so.1``: when it is missing, this runs
``apt-get update`` and ``apt-get install -y faketime`` (as root, or through sudo).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

#: Where Debian's package puts the library (the directory names the architecture).
PATTERN = "*/faketime/libfaketime.so.1"


def found() -> Path | None:
    """The installed library, if any."""
    return next(iter(sorted(Path("/usr/lib").glob(PATTERN))), None)


def ensure() -> Path:
    """The library's path, installed first if missing; exits with why if it cannot be."""
    if (library := found()) is not None:
        return library
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if prefix and shutil.which("sudo") is None:
        sys.exit("libfaketime is missing and this user cannot install it: run 'apt-get install -y faketime' as root")
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "faketime"]):
        print("+", " ".join(prefix + command), flush=True)
        if subprocess.run(prefix + command, env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"}).returncode:
            sys.exit(f"'{' '.join(command)}' failed: see its output above")
    if (library := found()) is None:
        sys.exit(f"the faketime package did not install /usr/lib/{PATTERN}")
    return library


if __name__ == "__main__":
    print(ensure())
