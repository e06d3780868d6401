"""A scratch virtualenv for tests that pip-install real plugin distributions.

The venv sees this interpreter's packages (so ``core`` and its dependencies need no
install) through a ``.pth`` line calling ``site.addsitedir``; distributions installed into
it are real (dist-info, entry points) and ``pip uninstall`` removes them.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEST_PLUGINS = REPO / "tests" / "plugins"


class ScratchEnv:
    """A virtualenv at ``path`` layered over the running interpreter's site-packages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
        self.python = path / "bin" / "python"
        purelib = subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        outer = [p for p in [*site.getsitepackages(), site.getusersitepackages()] if os.path.isdir(p)]
        lines = [f"import site; site.addsitedir({p!r})" for p in outer]
        Path(purelib, "_outer_site.pth").write_text("\n".join(lines) + "\n")

    def pip(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run pip (the outer one, targeting this venv's interpreter)."""
        return subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(self.python), "--disable-pip-version-check", *args],
            check=True, capture_output=True, text=True,
        )

    def install(self, path: Path) -> None:
        """pip-install a local distribution (no dependencies: core comes from outside)."""
        self.pip("install", "--no-deps", "--quiet", str(path))

    def uninstall(self, name: str) -> None:
        """pip-uninstall a distribution."""
        self.pip("uninstall", "--yes", "--quiet", name)

    def core(
        self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -m core ARGS`` in the venv; never raises on a non-zero exit."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")}
        return subprocess.run(
            [str(self.python), "-m", "core", *args],
            capture_output=True, text=True, env={**clean, **(env or {})}, cwd=cwd, timeout=120,
        )

    def python_code(self, code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a snippet with the venv's interpreter."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")}
        return subprocess.run(
            [str(self.python), "-c", code], capture_output=True, text=True, env={**clean, **(env or {})}, timeout=120,
        )
