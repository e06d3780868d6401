"""SQL warehouses: what ``core run operation`` and ``core run query`` need from a destination.

A destination that runs SQL (``core-plugin-sql``'s) renders templated SQL into statements
whose values are bound parameters (never SQL text), runs an operation in one transaction and
a query returning rows. The CLI finds it by name and checks it against :class:`SQLWarehouse`,
so the engine never imports the plugin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from hookspecs._toolkit import Toolkit


@dataclass(frozen=True, slots=True)
class RenderedSQL:
    """A rendered template: its statements and the values bound to their ``:name`` parameters."""

    statements: Sequence[str]
    params: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return ";\n".join(self.statements) + (";" if self.statements else "")


@dataclass(frozen=True, slots=True)
class QueryResult:
    """The rows of a query, with their column names."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]

    def records(self) -> list[dict[str, Any]]:
        """The rows as ``{column: value}`` dictionaries."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@runtime_checkable
class SQLWarehouse(Protocol):
    """A destination that runs SQL (between its ``init`` and ``shutdown``)."""

    name: str

    async def init(self, toolkit: Toolkit) -> None:
        """Connect (as when the scheduler starts)."""

    async def shutdown(self, toolkit: Toolkit) -> None:
        """Disconnect."""

    def render(self, template: str, variables: Mapping[str, Any] | None = None) -> RenderedSQL:
        """Render a SQL template; every value it outputs becomes a bound parameter."""

    async def run_operation(self, sql: RenderedSQL) -> int:
        """Run the statements in one transaction (where the database allows it); return the rows
        they changed (-1 when the driver cannot tell)."""

    async def run_query(self, sql: RenderedSQL) -> QueryResult:
        """Run the statements (in a transaction rolled back at the end); return the last one's rows."""
