"""``core purge --before TIME``: delete stored events received before TIME whose jobs are all
final (and the idempotency keys whose window ended), over the store directly, as
``POST /admin/api/store/purge`` does in the background. Asks for confirmation on a terminal."""

from __future__ import annotations

import sys

import click

from core.cli._common import Context, friendly, pass_context
from core.cli._store import when, with_store
from hookspecs import Store


@click.command("purge")
@click.option("--before", required=True, metavar="TIME",
              help="Purge events received before this: ISO 8601 time (UTC without an offset), or a duration ago "
                   "(720h, 2h).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation on a terminal.")
@pass_context
@friendly
def purge(ctx: Context, before: str, yes: bool) -> None:
    """Delete events received before --before whose jobs are all final, with their jobs and
    history; progress on stderr (a bar on a terminal, else lines like "purging 5/20")."""
    from core.admin.local import api_errors
    from core.admin.purge import SLICES, purge_before, purge_range
    from core.cli._progress import progress

    with api_errors():
        moment = purge_before({"before": before})
    if sys.stdin.isatty() and not yes:
        click.confirm(f"purge events received before {when(moment)} UTC whose jobs are all final?", abort=True)

    async def run(store: Store) -> int:
        with progress("purging", SLICES) as report:
            return await purge_range(store, moment, lambda _, fraction: report(round(fraction * SLICES), SLICES))

    purged = with_store(ctx, run)
    click.echo(f"purged {purged} event(s) received before {when(moment)} UTC")
