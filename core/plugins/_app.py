"""Load the user's own module of hookimpls (config key ``app`` or ``--app``), like a
``conftest.py``: a dotted module importable from the project root, or a ``.py`` file path."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from core.errors import CoreError
from core.plugins._collect import user_frames


def load_app(spec: str, root: Path) -> ModuleType:
    """Import the app module named by ``spec``, relative paths and modules from ``root``."""
    is_path = spec.endswith(".py") or "/" in spec or "\\" in spec
    try:
        if is_path:
            path = Path(spec).expanduser()
            path = (path if path.is_absolute() else root / path).resolve()
            if not path.is_file():
                raise CoreError(
                    f"app {spec!r}: no such file {path}",
                    hint="set 'app' in core.toml or --app to your pipeline module or .py file",
                )
            name = f"core_app_{path.stem}"
            if str(path.parent) not in sys.path:
                sys.path.insert(0, str(path.parent))
            module_spec = importlib.util.spec_from_file_location(name, path)
            assert module_spec and module_spec.loader
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
            return module
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        return importlib.import_module(spec)
    except CoreError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and spec.startswith(exc.name):
            raise CoreError(
                f"app {spec!r}: no module named {exc.name!r} (looked in {root} and sys.path)",
                hint="give a dotted module importable from the project root, or a .py file path",
            ) from None
        raise CoreError(f"app {spec!r} failed to import:\n{user_frames(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - the user's code; show where it broke
        raise CoreError(f"app {spec!r} failed to import:\n{user_frames(exc)}") from None
