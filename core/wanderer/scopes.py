"""Migration scopes, written as in Blacksmith.

``source:<s>``, ``source/trigger:<s>/<t>``, ``destination:<d>``, ``destination/action:<d>/<a>``
(short forms ``s:``, ``s/t:``, ``d:``, ``d/a:``) and ``store`` (the store's database). A scope
parses to one canonical spelling, so ``d:warehouse`` and ``destination:warehouse`` are one scope.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import CoreError
from hookspecs import check_name

#: The kinds of scope, by every spelling, and how many names each takes.
KINDS = {
    "source": "source", "s": "source",
    "source/trigger": "source/trigger", "s/t": "source/trigger",
    "destination": "destination", "d": "destination",
    "destination/action": "destination/action", "d/a": "destination/action",
}
ARITY = {"source": 1, "source/trigger": 2, "destination": 1, "destination/action": 2}
STORE = "store"
FORMS = "source:S, source/trigger:S/T, destination:D, destination/action:D/A (or s:, s/t:, d:, d/a:), store"


class ScopeError(CoreError):
    """A scope that cannot be parsed, or names nothing registered."""


@dataclass(frozen=True, slots=True)
class Scope:
    """A parsed scope: its kind and the names it takes (``("warehouse", "insert")``)."""

    kind: str
    names: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.kind if self.kind == STORE else f"{self.kind}:{'/'.join(self.names)}"

    @property
    def parent(self) -> Scope | None:
        """The source of a trigger's scope, the destination of an action's; else ``None``."""
        if len(self.names) == 2:
            return Scope(self.kind.split("/")[0], self.names[:1])
        return None


def parse_scope(text: str) -> Scope:
    """Parse ``text`` into a :class:`Scope`; raise :class:`ScopeError` saying what is wrong."""
    raw = text.strip()
    if raw == STORE:
        return Scope(STORE)
    kind, sep, rest = raw.partition(":")
    canonical = KINDS.get(kind)
    if not sep or canonical is None:
        raise ScopeError(f"scope {text!r} is not valid", hint=f"write it as one of: {FORMS}")
    names = tuple(rest.split("/")) if rest else ()
    if len(names) != ARITY[canonical]:
        raise ScopeError(
            f"scope {text!r} needs {ARITY[canonical]} name(s) after '{kind}:'", hint=f"write it as one of: {FORMS}"
        )
    for name in names:
        try:
            check_name("scope", name)
        except ValueError as exc:
            raise ScopeError(f"scope {text!r}: {exc}", hint=f"write it as one of: {FORMS}") from None
    return Scope(canonical, names)


def canonical(text: str) -> str:
    """The canonical spelling of a scope."""
    return str(parse_scope(text))
