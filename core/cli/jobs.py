"""``core jobs``: list jobs, show one with its transitions, retry failed, discarded or unknown ones.

``list`` shows the newest jobs first and says how many of how many; ``--action`` takes the
``destination.action`` the table prints (or a bare action name), and with an app loaded a
destination or action the pipeline does not have is refused, listing those it has. ``DUE`` of a
job waiting for its schedule is the schedule's next tick (``by`` a time for ``@every``: the
scheduler's ticks count from its start).

``retry`` appends an ``awaiting`` transition due now (the history is never rewritten): the
scheduler takes the job at its action's next tick, or at the next poll for a realtime action.
The attempt count goes on from where it was, so a job discarded after its last retry gets one
more attempt, and is discarded again if that one fails too. ``retry --status discarded``
(with ``--destination``/``--action``) retries every matching job at once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from core.admin import filters
from core.admin.local import api_errors, local_call, parse_where
from core.admin.redrive import RETRYABLE, Redriven, redrive
from core.admin.write import no_match, note, selection
from core.admin.write import retry_jobs as retry_route
from core.cli._admin_client import Remote, call_remote, remote_options
from core.cli._common import Context, friendly, pass_context, table
from core.cli._progress import progress
from core.cli._store import echo_json, echo_listing, newest, parse_time, short, when, with_store
from core.errors import CoreError
from core.pipeline import Pipeline
from core.plugins import PluginHost
from core.timing import parse_interval
from hookspecs import FINAL_STATUSES, Job, Page, Status, Store, Transition, WhereJob, new_id

STATUSES = [status.value for status in Status]


@click.group("jobs")
def jobs() -> None:
    """Inspect and retry jobs."""


def pipeline_of(host: PluginHost) -> Pipeline | None:
    """The app's pipeline, or ``None`` without an app (nothing to check names against)."""
    return Pipeline.from_host(host) if host.settings["app"] else None


def _filters(pipeline: Pipeline | None, destinations: tuple[str, ...], actions: tuple[str, ...]) -> WhereJob:
    """``--destination``/``--action`` as a filter; names the pipeline lacks are refused."""
    if pipeline is not None and pipeline.destinations:
        known = sorted(f"{d.name}.{a}" for d in pipeline.destinations.values() for a in d.actions)
        hint = "its actions: " + ", ".join(known)
        for name in destinations:
            if name not in pipeline.destinations:
                raise CoreError(
                    f"--destination {name!r}: the pipeline has no such destination; "
                    f"its destinations: {', '.join(sorted(pipeline.destinations))}", hint=hint,
                )
        for ref in actions:
            bare = {a for d in pipeline.destinations.values() for a in d.actions}
            if ("." in ref and ref not in known) or ("." not in ref and ref not in bare):
                raise CoreError(f"--action {ref!r}: the pipeline has no such action", hint=hint)
    parts = [ref.rpartition(".") for ref in actions]
    every_dotted = bool(parts) and all(dot for _, dot, _ in parts)
    return WhereJob(
        destinations_in=list(destinations) or (sorted({d for d, _, _ in parts}) if every_dotted else []),
        actions_in=sorted({a for _, _, a in parts}),
    )


def _matches(actions: tuple[str, ...]) -> Callable[[Job], bool]:
    """Keep a job whose ``destination.action`` or action name is one of ``actions``."""
    wanted = set(actions)

    def keep(job: Job) -> bool:
        return not wanted or job.action in wanted or f"{job.destination}.{job.action}" in wanted

    return keep


def due(job: Job, pipeline: Pipeline | None, now: datetime) -> str:
    """When a job is next due: its ``due_at``, else its schedule's next tick; ``-`` if never."""
    if job.due_at is not None:
        return when(job.due_at)
    if job.status in FINAL_STATUSES or job.status == Status.EXECUTING:
        return "-"
    if pipeline is None or job.destination not in pipeline.destinations:
        return "next tick"
    destination = pipeline.destinations[job.destination]
    if job.action not in destination.actions:
        return "next tick"
    schedule = destination.schedule_of(job.action)
    if schedule.realtime:
        return "now (realtime)"
    interval = parse_interval(schedule.interval)
    tick = when(interval.next_after(now))
    return f"by {tick}" if interval.every is not None else tick


@jobs.command("list")
@click.option("--destination", "destinations", multiple=True, help="Only jobs of this destination (repeatable).")
@click.option("--action", "actions", multiple=True,
              help="Only jobs of this action: destination.action as listed, or an action name (repeatable).")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Only this status (repeatable).")
@click.option("--event", "event_ids", multiple=True, help="Only jobs of this event id (repeatable).")
@click.option("--after", help="Created after: ISO 8601 time, or a duration ago (30m, 2h).")
@click.option("--before", help="Created before: ISO 8601 time, or a duration ago.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="Most jobs shown (the newest).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@pass_context
@friendly
def list_jobs(ctx: Context, destinations: tuple[str, ...], actions: tuple[str, ...], statuses: tuple[str, ...],
              event_ids: tuple[str, ...], after: str | None, before: str | None, limit: int, as_json: bool) -> None:
    """List jobs with their current status, newest first, and how many match in all."""
    host = ctx.host()
    pipeline = pipeline_of(host)
    base = _filters(pipeline, destinations, actions)
    where = WhereJob(
        destinations_in=base.destinations_in, actions_in=base.actions_in, status_in=[Status(s) for s in statuses],
        event_ids=event_ids, created_after=parse_time(after, "--after"),
        created_before=parse_time(before, "--before"),
    )

    async def find(store: Store) -> tuple[list[Job], int]:
        return await newest(store.find_jobs, where, limit, _matches(actions))

    found, total = with_store(ctx, find, host)
    now = datetime.now(UTC)
    echo_listing(
        found, as_json=as_json, what="jobs", headers=("ID", "EVENT", "ACTION", "STATUS", "ATTEMPT", "DUE"),
        row=lambda j: (j.id, j.event_id, f"{j.destination}.{j.action}", j.status.value, str(j.attempt),
                       due(j, pipeline, now)),
        total=total,
    )


@jobs.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@pass_context
@friendly
def show_job(ctx: Context, job_id: str, as_json: bool) -> None:
    """Show one job: its fields, payload and every transition, errors in full."""

    async def get(store: Store) -> Job | None:
        return await store.get_job(job_id)

    host = ctx.host()
    job = with_store(ctx, get, host)
    if job is None:
        raise CoreError(f"no job {job_id!r} in the store", hint="find ids with: core jobs list")
    if as_json:
        echo_json(job)
        return
    click.echo(f"id:          {job.id}\naction:      {job.destination}.{job.action}\nevent:       {job.event_id}")
    click.echo(f"parent:      {job.parent_job_id or '-'}\nversion:     {job.version or '-'}")
    click.echo(f"created_at:  {when(job.created_at)}\nstatus:      {job.status.value} (attempt {job.attempt})")
    click.echo(f"due:         {due(job, pipeline_of(host), datetime.now(UTC))}\ncontext:     {short(job.context, 200)}")
    click.echo(f"data:        {short(job.data, 200)}\n")
    rows = [
        (when(t.created_at), (t.state_before.value if t.state_before else "-") + " -> " + t.state_after.value,
         str(t.attempt), when(t.due_at), " ".join((t.error or "-").split()))
        for t in job.transitions
    ]
    click.echo(table(("AT", "TRANSITION", "ATTEMPT", "DUE", "ERROR"), rows))


async def _named(store: Store, job_ids: tuple[str, ...]) -> tuple[list[Job], list[str]]:
    """The named jobs that may be retried, and a line for each that may not."""
    found = {j.id: j for j in await store.find_jobs(WhereJob(ids=list(job_ids), page=Page(limit=len(job_ids))))}
    chosen: list[Job] = []
    refused: list[str] = []
    for job_id in dict.fromkeys(job_ids):
        job = found.get(job_id)
        if job is None:
            refused.append(f"{job_id}: no such job")
        elif job.status not in RETRYABLE:
            refused.append(f"{job_id}: is {job.status.value}; only failed, discarded or unknown jobs are retried")
        else:
            chosen.append(job)
    return chosen, refused


@jobs.command("retry")
@click.argument("job_ids", nargs=-1)
@click.option("--status", "statuses", multiple=True, type=click.Choice([s.value for s in RETRYABLE]),
              help="Retry every job in this status (repeatable), instead of naming ids.")
@click.option("--destination", "destinations", multiple=True, help="With --status: only this destination.")
@click.option("--action", "actions", multiple=True, help="With --status: only this action (destination.action).")
@click.option("--where", "where", multiple=True, metavar="FILTER=VALUE",
              help="Retry every job matching these admin API filters (status_in=discarded, actions_in=d.a, "
                   "created_after=2h...; repeatable), instead of ids or --status.")
@click.option("--reason", help="With --status or --where: why, recorded in each job's history.")
@click.option("--yes", is_flag=True, help="With --where: do not ask for confirmation on a terminal.")
@remote_options
@pass_context
@friendly
def retry_jobs(ctx: Context, job_ids: tuple[str, ...], statuses: tuple[str, ...], destinations: tuple[str, ...],
               actions: tuple[str, ...], where: tuple[str, ...], reason: str | None, yes: bool,
               remote: Remote | None) -> None:
    """Run failed, discarded or unknown jobs again, as soon as their action's schedule allows.

    Name the jobs (JOB_IDS), or select them all with --status (core jobs retry --status
    discarded --action warehouse.insert; read and retried a page at a time), or with --where:
    those are counted first, then retried
    a page at a time (bounded memory) with progress on stderr, a bar on a terminal, else lines
    like "retried 5000/10000". Exits 1 if a job could not be retried (not found,
    not in a retryable status, or moved on since it was read: the store refused the retry).
    With --url, --where is the way to select (ids_in=..., status_in=...): the admin API retries
    them in one request, so no progress is shown.
    """
    if where:
        if job_ids or statuses or destinations or actions:
            raise click.UsageError("--where selects the jobs alone: give no ids, --status, --destination or --action")
        _retry_where(ctx, where, reason, yes, remote)
        return
    if remote:
        raise click.UsageError("with --url, select the jobs with --where (e.g. --where status_in=discarded)")
    if bool(job_ids) == bool(statuses):
        raise click.UsageError("give job ids, or --status (e.g. --status discarded) to retry every such job")
    if (destinations or actions) and not statuses:
        raise click.UsageError("--destination and --action select jobs together with --status")
    if statuses:
        _retry_status(ctx, statuses, destinations, actions, reason)
        return

    async def retry(store: Store) -> tuple[list[Job], list[str]]:
        chosen, refused = await _named(store, job_ids)
        now = datetime.now(UTC)
        moved = await store.add_transitions([
            Transition(id=new_id(), job_id=j.id, event_id=j.event_id, attempt=j.attempt, state_before=j.status,
                       state_after=Status.AWAITING, created_at=now, due_at=now, error=None)
            for j in chosen
        ])
        lost = {r.transition.job_id for r in moved}  # moved on since it was read (say, claimed)
        return [j for j in chosen if j.id not in lost], refused + [r.reason for r in moved]

    chosen, refused = with_store(ctx, retry)
    for job in chosen:
        click.echo(f"{job.id}: {job.status.value} -> awaiting ({job.destination}.{job.action}, due now)")
    _refused(refused, bool(refused))


def _refused(messages: list[str], failed: bool) -> None:
    """Print the refusals in red on stderr; exit 1 if ``failed`` (some job was not retried)."""
    for message in messages:
        click.secho(message, fg="red", err=True)
    if failed:
        sys.exit(1)


def _retry_status(ctx: Context, statuses: tuple[str, ...], destinations: tuple[str, ...],
                  actions: tuple[str, ...], reason: str | None) -> None:
    """``retry --status``: every match, a keyset page at a time (the bulk redrive, bounded
    memory), then the count by action and status."""
    host = ctx.host()
    base = _filters(pipeline_of(host), destinations, actions)
    chosen = filters.JobFilter(
        where=WhereJob(destinations_in=base.destinations_in, actions_in=base.actions_in,
                       status_in=[Status(s) for s in statuses]),
        actions_in=frozenset(actions),
    )
    text = note("retried", local_call(None, {"reason": reason}))
    done = with_store(ctx, lambda store: redrive(store, chosen, text), host)
    for (action, status), n in sorted(done.by_action.items()):
        click.echo(f"{action}: {n} {status} job(s) -> awaiting (due now)")
    click.echo(f"retried {done.retried} job(s)" if done.retried else "No jobs match.")
    _refused(done.refused, bool(done.refused_count))


def _retry_where(ctx: Context, where: tuple[str, ...], reason: str | None, yes: bool, remote: Remote | None) -> None:
    """``retry --where``: count the matches (a dry pass), confirm on a terminal, then retry them
    page by page with progress (the admin API's retry, over the store directly or at ``remote``)."""
    body = {"where": parse_where(where), "reason": reason}
    if remote:
        counted = call_remote(remote, retry_route, {**body, "dry_run": True})
        if sys.stdin.isatty() and not yes:
            click.confirm(f"retry {counted['retried']} job(s)?", abort=True)
        answer = call_remote(remote, retry_route, body)
        done = Redriven(matched=answer["matched"], retried=answer["retried"], refused_count=answer["refused_count"],
                        refused=answer["refused"])
    else:
        done = _retry_where_here(ctx, body, yes)
    click.echo(f"retried {done.retried} of {done.matched} matching job(s)")
    _refused(done.refused, bool(done.refused_count))


def _retry_where_here(ctx: Context, body: dict[str, Any], yes: bool) -> Redriven:
    """``retry --where`` over the store: the dry pass, the confirmation, the retry with progress."""
    call = local_call(None, body)
    with api_errors():
        _, chosen = selection(call)
    text = note("retried", call)

    async def run(store: Store) -> Redriven:
        counted = await redrive(store, chosen, text, dry_run=True)
        if not counted.matched:
            with api_errors():
                raise no_match(None)
        if sys.stdin.isatty() and not yes:
            click.confirm(f"retry {counted.retried} job(s)?", abort=True)
        with progress("retried", counted.matched) as report:
            return await redrive(store, chosen, text, total=counted.matched, progress=report)

    return with_store(ctx, run, ctx.host())
