"""What the host knows of each plugin, for ``core plugins list`` and error messages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["active", "disabled", "error"]


@dataclass(slots=True)
class PluginRecord:
    """One plugin: where it comes from, whether it loaded, and what it offers."""

    name: str
    module: str
    distribution: str
    version: str
    status: Status = "active"
    error: str | None = None
    builtin: bool = False
    hooks: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)

    def fail(self, error: str) -> None:
        """Mark the plugin broken with a one-line reason (the first error wins)."""
        if self.status != "error":
            self.status, self.error = "error", error

    def to_json(self) -> dict[str, Any]:
        """The record as the keys of ``core plugins list --json``."""
        return asdict(self)
