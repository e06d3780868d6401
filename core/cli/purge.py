"""``core purge --before TIME [--where FILTER=VALUE ...]``: delete stored events received before
TIME whose jobs are all final and all match the filters (and the idempotency keys whose window
ended), over the store directly, as
``POST /admin/api/store/purge`` does in the background (with ``--url``: that route, its
operation followed to the end). Asks for confirmation on a terminal."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Any

import click

from core.admin.local import api_errors, parse_where
from core.admin.operations import FAILED, RUNNING, get_operation
from core.admin.purge import PURGE_FILTERS, SLICES, purge_before, purge_range, purge_where
from core.admin.purge import purge as purge_route
from core.cli._admin_client import Remote, call_remote, remote_options
from core.cli._common import Context, friendly, pass_context
from core.cli._progress import progress
from core.cli._store import when, with_store
from core.errors import CoreError
from hookspecs import Store

#: Seconds between two reads of a purge operation run by the admin API.
POLL = 0.2


@click.command("purge")
@click.option("--before", required=True, metavar="TIME",
              help="Purge events received before this: ISO 8601 time (UTC without an offset), or a duration ago "
                   "(720h, 2h).")
@click.option("--where", "where", multiple=True, metavar="FILTER=VALUE",
              help="Only events all of whose jobs match these job filters (repeatable): "
                   f"{', '.join(PURGE_FILTERS)}; e.g. status_in=discarded, actions_in=warehouse.insert.")
@click.option("--reason", help="Why (kept with the admin API's operation, with --url).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation on a terminal.")
@remote_options
@pass_context
@friendly
def purge(ctx: Context, before: str, where: tuple[str, ...], reason: str | None, yes: bool,
          remote: Remote | None) -> None:
    """Delete events received before --before whose jobs are all final (and all match --where),
    with their jobs and history; progress on stderr (a bar on a terminal, else lines like
    "purging 5/20")."""
    body = {"before": before, "where": parse_where(where), "reason": reason}
    with api_errors():
        moment, chosen = purge_before(body), purge_where(body)
    if sys.stdin.isatty() and not yes:
        matching = f" and match {' '.join(where)}" if where else ""
        click.confirm(f"purge events received before {when(moment)} UTC whose jobs are all final{matching}?",
                      abort=True)

    async def run(store: Store) -> int:
        with progress("purging", SLICES) as report:
            return await purge_range(store, moment, lambda _, fraction: report(round(fraction * SLICES), SLICES),
                                     chosen)

    if remote:
        purged, moment = _purge_remote(remote, body)
    else:
        purged = with_store(ctx, run)
    click.echo(f"purged {purged} event(s) received before {when(moment)} UTC")


def _purge_remote(remote: Remote, body: dict[str, Any]) -> tuple[int, datetime]:
    """Start the purge at ``remote`` and follow its operation to the end, with progress: how
    many events it purged, and the time the admin API purged before."""
    operation = call_remote(remote, purge_route, body)
    with progress("purging", SLICES) as report:
        while operation["state"] == RUNNING:
            report(round(operation["progress"] * SLICES), SLICES)
            time.sleep(POLL)
            operation = call_remote(remote, get_operation, path={"id": operation["id"]})
        report(SLICES, SLICES)
    if operation["state"] == FAILED:
        raise CoreError(f"the purge failed in the admin API: {operation['error']}",
                        hint=f"see the admin API's log; the operation is {operation['href']}")
    return operation["counts"].get("purged", 0), datetime.fromisoformat(operation["params"]["before"])
