"""Migration files: ``migrations/<scope>/YYYYMMDDHHMMSS.<name>.up.sql`` and ``.down.sql``.

The folder under ``migrations/`` is the scope (``migrations/destination:warehouse/``,
``migrations/d/a:warehouse/insert/``); each version has an ``up`` and a ``down`` file. The
checksum covers both, so a file edited after its migration ran is noticed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.errors import CoreError
from core.wanderer.scopes import canonical
from hookspecs import Direction, MigrationScript

FILE = re.compile(r"^(?P<version>\d{14})\.(?P<name>[A-Za-z0-9_-]+)\.(?P<direction>up|down)\.sql$")
PATTERN = "YYYYMMDDHHMMSS.<name>.up.sql and .down.sql (name: letters, digits, '_' and '-')"


@dataclass(frozen=True, slots=True)
class MigrationFiles:
    """The two files of one version of a scope."""

    version: str
    scope: str
    name: str
    up: Path
    down: Path

    @property
    def checksum(self) -> str:
        """SHA-256 of the up file, a NUL, and the down file."""
        digest = hashlib.sha256(self.up.read_bytes())
        digest.update(b"\0")
        digest.update(self.down.read_bytes())
        return digest.hexdigest()

    def script(self, direction: Direction) -> MigrationScript:
        """One direction as its owner's ``migrate`` receives it."""
        path = self.up if direction is Direction.UP else self.down
        return MigrationScript(
            version=self.version, scope=self.scope, name=self.name, direction=direction,
            path=str(path), text=path.read_text(encoding="utf-8"),
        )


def read_directory(root: Path) -> list[MigrationFiles]:
    """Every migration under ``root`` (``[]`` if it does not exist), by scope then version."""
    if not root.is_dir():
        return []
    found: dict[tuple[str, str], dict[str, Path]] = {}
    names: dict[tuple[str, str], str] = {}
    for path in sorted(root.rglob("*.sql")):
        match = FILE.match(path.name)
        if match is None:
            raise CoreError(f"migration file {path} is not named {PATTERN}", hint="rename it, or move it out of "
                            f"{root}")
        folder = path.parent.relative_to(root).as_posix()
        if folder == ".":
            raise CoreError(f"migration file {path} is not in a scope's folder",
                            hint=f"move it to {root}/<scope>/, e.g. {root}/destination:warehouse/")
        try:
            scope = canonical(folder)
        except CoreError as exc:
            raise CoreError(f"migration folder {path.parent}: {exc.message}", hint=exc.hint) from None
        key = (scope, match["version"])
        if key in names and names[key] != match["name"]:
            raise CoreError(f"{scope} has two migrations of version {key[1]}: {names[key]!r} and {match['name']!r}",
                            hint="give every migration of a scope its own version (core generate migration does)")
        names[key] = match["name"]
        found.setdefault(key, {})[match["direction"]] = path
    out: list[MigrationFiles] = []
    for (scope, version), paths in sorted(found.items()):
        for direction in ("up", "down"):
            if direction not in paths:
                other = next(iter(paths.values()))
                raise CoreError(f"migration {other} has no {direction} file",
                                hint=f"add {other.parent / f'{version}.{names[(scope, version)]}.{direction}.sql'}")
        out.append(MigrationFiles(version, scope, names[(scope, version)], paths["up"], paths["down"]))
    return out


def write_migration(root: Path, scope: str, name: str, now: datetime | None = None) -> MigrationFiles:
    """Create the two files of a new migration of ``scope`` (``core generate migration``)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise CoreError(f"migration name {name!r} is not valid", hint="use letters, digits, '_' and '-'")
    scope = canonical(scope)
    version = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    folder = root / scope
    taken = [p for p in folder.glob(f"{version}.*.sql")] if folder.is_dir() else []
    if taken:
        raise CoreError(f"{scope} already has a migration of version {version} ({taken[0].name})",
                        hint="wait a second and run the command again")
    folder.mkdir(parents=True, exist_ok=True)
    up, down = folder / f"{version}.{name}.up.sql", folder / f"{version}.{name}.down.sql"
    up.write_text(f"-- {scope} {version} {name}: up\n")
    down.write_text(f"-- {scope} {version} {name}: down (undo what up did)\n")
    return MigrationFiles(version, scope, name, up, down)
