"""What the host knows of each plugin, for ``core plugins list`` and error messages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["active", "disabled", "error"]


@dataclass(frozen=True, slots=True)
class ProvidedAdapter:
    """One adapter a plugin provides: its kind, its name and the URL schemes it serves."""

    kind: str
    name: str
    schemes: list[str]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name} ({', '.join(self.schemes)})"


@dataclass(slots=True)
class PluginRecord:
    """One plugin: where it comes from, whether it loaded, and what it offers."""

    name: str
    module: str
    distribution: str
    version: str
    status: Status = "active"
    error: str | None = None
    #: A non-fatal remark, e.g. no declared contract range (docs/compatibility.md).
    warning: str | None = None
    builtin: bool = False
    hooks: list[str] = field(default_factory=list)
    #: ``kind:name`` of each adapter it provides.
    provides: list[str] = field(default_factory=list)
    #: The same adapters with the URL schemes they serve.
    adapters: list[ProvidedAdapter] = field(default_factory=list)

    def fail(self, error: str) -> None:
        """Mark the plugin broken with a one-line reason (the first error wins)."""
        if self.status != "error":
            self.status, self.error = "error", error

    def to_json(self) -> dict[str, Any]:
        """The record as the keys of ``core plugins list --json``."""
        return asdict(self)
