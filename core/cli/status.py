"""``core status``: the backlog of every action by status, actions with failing or discarded
jobs first, as a table or ``--json``.

It reads the store's summary (unfinished jobs by destination, action and status) and, with an
app loaded, lists the pipeline's actions that have no backlog too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import click

from core.admin.read import list_destinations
from core.cli._admin_client import Remote, call_remote, remote_options
from core.cli._common import Context, friendly, pass_context, table
from core.cli._store import echo_json, with_store
from core.cli.jobs import pipeline_of
from hookspecs import FINAL_STATUSES, BacklogStore, Status, Store

#: Statuses that mean an action is failing, counted first in the order.
FAILING = (Status.FAILED.value, Status.UNKNOWN.value)
COLUMNS = [s.value for s in Status if s not in FINAL_STATUSES]


def _local_backlog(ctx: Context) -> tuple[Mapping[tuple[str, str, str], int], list[str]]:
    """The store's backlog summary, and the app's actions (none without an app)."""
    host = ctx.host()
    pipeline = pipeline_of(host)
    actions = sorted(f"{d.name}.{a}" for d in pipeline.destinations.values() for a in d.actions) if pipeline else []

    async def read(store: Store) -> Mapping[tuple[str, str, str], int]:
        return await store.backlog() if isinstance(store, BacklogStore) else {}

    return with_store(ctx, read, host), actions


def _remote_backlog(remote: Remote) -> tuple[Mapping[tuple[str, str, str], int], list[str]]:
    """The backlog and the actions of the admin API's ``GET /destinations``."""
    found = call_remote(remote, list_destinations)["destinations"]
    acts = [a for d in found for a in d["actions"]]
    counts = {(a["destination"], a["name"], state): n for a in acts for state, n in a["backlog"].items()}
    return counts, sorted(f"{a['destination']}.{a['name']}" for a in acts)


def rows_of(counts: Mapping[tuple[str, str, str], int], actions: list[str]) -> list[tuple[str, dict[str, int]]]:
    """``(destination.action, count by status)`` per action; most failing first, then by name."""
    by_action: dict[str, dict[str, int]] = defaultdict(dict, {name: {} for name in actions})
    for (destination, action, state), n in counts.items():
        by_action[f"{destination}.{action}"][state] = n
    return sorted(by_action.items(), key=lambda row: (-sum(row[1].get(s, 0) for s in FAILING), row[0]))


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@remote_options
@pass_context
@friendly
def status(ctx: Context, as_json: bool, remote: Remote | None) -> None:
    """Show the backlog of every action by status, failing actions first (with --url: of the
    pipeline's actions, as the admin API's /destinations reports them)."""
    rows = rows_of(*(_remote_backlog(remote) if remote else _local_backlog(ctx)))
    if as_json:
        echo_json([{"action": name, "backlog": backlog} for name, backlog in rows])
    elif not rows:
        click.echo("No actions and no backlog.")
    else:
        body = [[name, *(str(backlog.get(c, 0)) for c in COLUMNS)] for name, backlog in rows]
        click.echo(table(["ACTION", *(c.upper() for c in COLUMNS)], body))
