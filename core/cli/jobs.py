"""``core jobs``: list jobs, show one with its transitions, retry failed, discarded or unknown ones.

``retry`` appends an ``awaiting`` transition due now (the history is never rewritten): the
scheduler takes the job at its action's next tick, or at the next poll for a realtime action.
The attempt count goes on from where it was, so a job discarded after its last retry gets one
more attempt, and is discarded again if that one fails too.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from core.cli._common import Context, friendly, pass_context, table
from core.cli._store import echo_json, echo_listing, parse_time, short, when, with_store
from core.errors import CoreError
from hookspecs import Job, Page, Status, Store, Transition, WhereJob, new_id

#: Statuses a job may be retried from.
RETRYABLE = (Status.FAILED, Status.DISCARDED, Status.UNKNOWN)
STATUSES = [status.value for status in Status]


@click.group("jobs")
def jobs() -> None:
    """Inspect and retry jobs."""


@jobs.command("list")
@click.option("--destination", "destinations", multiple=True, help="Only jobs of this destination (repeatable).")
@click.option("--action", "actions", multiple=True, help="Only jobs of this action (repeatable).")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Only this status (repeatable).")
@click.option("--event", "event_ids", multiple=True, help="Only jobs of this event id (repeatable).")
@click.option("--after", help="Created after: ISO 8601 time, or a duration ago (30m, 2h).")
@click.option("--before", help="Created before: ISO 8601 time, or a duration ago.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True, help="Most jobs shown.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@pass_context
@friendly
def list_jobs(ctx: Context, destinations: tuple[str, ...], actions: tuple[str, ...], statuses: tuple[str, ...],
              event_ids: tuple[str, ...], after: str | None, before: str | None, limit: int, as_json: bool) -> None:
    """List jobs with their current status, oldest first."""
    where = WhereJob(
        destinations_in=destinations, actions_in=actions, status_in=[Status(s) for s in statuses],
        event_ids=event_ids, created_after=parse_time(after, "--after"),
        created_before=parse_time(before, "--before"), page=Page(limit=limit),
    )

    async def find(store: Store) -> list[Job]:
        return await store.find_jobs(where)

    found = with_store(ctx, find)
    echo_listing(
        found, as_json=as_json, what="jobs", headers=("ID", "EVENT", "ACTION", "STATUS", "ATTEMPT", "DUE"),
        row=lambda j: (j.id, j.event_id, f"{j.destination}.{j.action}", j.status.value, str(j.attempt), when(j.due_at)),
    )


@jobs.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@pass_context
@friendly
def show_job(ctx: Context, job_id: str, as_json: bool) -> None:
    """Show one job: its fields, payload and every transition."""

    async def get(store: Store) -> Job | None:
        return await store.get_job(job_id)

    job = with_store(ctx, get)
    if job is None:
        raise CoreError(f"no job {job_id!r} in the store", hint="find ids with: core jobs list")
    if as_json:
        echo_json(job)
        return
    click.echo(f"id:          {job.id}\naction:      {job.destination}.{job.action}\nevent:       {job.event_id}")
    click.echo(f"parent:      {job.parent_job_id or '-'}\nversion:     {job.version or '-'}")
    click.echo(f"created_at:  {when(job.created_at)}\nstatus:      {job.status.value} (attempt {job.attempt})")
    click.echo(f"due_at:      {when(job.due_at)}\ncontext:     {short(job.context, 200)}")
    click.echo(f"data:        {short(job.data, 200)}\n")
    rows = [
        (when(t.created_at), (t.state_before.value if t.state_before else "-") + " -> " + t.state_after.value,
         str(t.attempt), when(t.due_at), short(t.error or "-", 80))
        for t in job.transitions
    ]
    click.echo(table(("AT", "TRANSITION", "ATTEMPT", "DUE", "ERROR"), rows))


@jobs.command("retry")
@click.argument("job_ids", nargs=-1, required=True)
@pass_context
@friendly
def retry_jobs(ctx: Context, job_ids: tuple[str, ...]) -> None:
    """Run failed, discarded or unknown jobs again, as soon as their action's schedule allows.

    Exits 1 if a job could not be retried (not found, or not in a retryable status).
    """

    async def retry(store: Store) -> tuple[list[Job], list[str]]:
        found = {j.id: j for j in await store.find_jobs(WhereJob(ids=list(job_ids), page=Page(limit=len(job_ids))))}
        now = datetime.now(UTC)
        chosen, refused = [], []
        for job_id in dict.fromkeys(job_ids):
            job = found.get(job_id)
            if job is None:
                refused.append(f"{job_id}: no such job")
            elif job.status not in RETRYABLE:
                refused.append(f"{job_id}: is {job.status.value}; only failed, discarded or unknown jobs are retried")
            else:
                chosen.append(job)
        await store.add_transitions([
            Transition(id=new_id(), job_id=j.id, event_id=j.event_id, attempt=j.attempt, state_before=j.status,
                       state_after=Status.AWAITING, created_at=now, due_at=now, error=None)
            for j in chosen
        ])
        return chosen, refused

    chosen, refused = with_store(ctx, retry)
    for job in chosen:
        click.echo(f"{job.id}: {job.status.value} -> awaiting ({job.destination}.{job.action}, due now)")
    for message in refused:
        click.secho(message, fg="red", err=True)
    if refused:
        sys.exit(1)
