"""``core status``: the backlog of every action by status, actions with failing or discarded
jobs first, as a table or ``--json``.

It reads the store's summary (unfinished jobs by destination, action and status) and, with an
app loaded, lists the pipeline's actions that have no backlog too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import click

from core.cli._common import Context, friendly, pass_context, table
from core.cli._store import echo_json, with_store
from core.cli.jobs import pipeline_of
from hookspecs import FINAL_STATUSES, Status, Store

#: Statuses that mean an action is failing, counted first in the order.
FAILING = (Status.FAILED.value, Status.UNKNOWN.value)
COLUMNS = [s.value for s in Status if s not in FINAL_STATUSES]


def rows_of(counts: Mapping[tuple[str, str, str], int], actions: list[str]) -> list[tuple[str, dict[str, int]]]:
    """``(destination.action, count by status)`` per action; most failing first, then by name."""
    by_action: dict[str, dict[str, int]] = defaultdict(dict, {name: {} for name in actions})
    for (destination, action, state), n in counts.items():
        by_action[f"{destination}.{action}"][state] = n
    return sorted(by_action.items(), key=lambda row: (-sum(row[1].get(s, 0) for s in FAILING), row[0]))


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@pass_context
@friendly
def status(ctx: Context, as_json: bool) -> None:
    """Show the backlog of every action by status, failing actions first."""
    host = ctx.host()
    pipeline = pipeline_of(host)
    actions = sorted(f"{d.name}.{a}" for d in pipeline.destinations.values() for a in d.actions) if pipeline else []

    async def read(store: Store) -> Mapping[tuple[str, str, str], int]:
        reader = getattr(store, "backlog", None)
        return await reader() if reader is not None else {}

    rows = rows_of(with_store(ctx, read, host), actions)
    if as_json:
        echo_json([{"action": name, "backlog": backlog} for name, backlog in rows])
    elif not rows:
        click.echo("No actions and no backlog.")
    else:
        body = [[name, *(str(backlog.get(c, 0)) for c in COLUMNS)] for name, backlog in rows]
        click.echo(table(["ACTION", *(c.upper() for c in COLUMNS)], body))
