"""``core start``: run the gateway, the scheduler and the admin API in one process on one
runtime (one store, so one writer for SQLite); ``core start gateway`` / ``core start scheduler``
/ ``core start admin`` run one of them.

SIGTERM or Ctrl-C stops cleanly (a second one forces the exit); a clean stop exits 0. The
scheduler stops first (its running loads finish within ``scheduler.grace_seconds``), then the
gateway, so that a load calling this gateway is not refused by the stop.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import click

from core.admin.tokens import secrets_of as admin_secrets
from core.cli._common import Context, friendly, pass_context
from core.cli.migrate import check_pending, require_migrations_option, required_migrations
from core.config import Settings
from core.errors import CoreError
from core.observability import logs, tracing
from core.runtime import Runtime
from hookspecs import redacted_url

F = Callable[..., Any]


def _options(func: F) -> F:
    """The options every ``start`` command takes."""
    for decorator in reversed((
        click.option("--app", metavar="MODULE", help="Your pipeline module or .py file (config key 'app')."),
        click.option("--config", "config_path", metavar="FILE", help="core.toml or pyproject.toml to read."),
    )):
        func = decorator(func)
    return func


def _gateway_options(func: F) -> F:
    """The options of the commands that run a gateway (the scheduler listens on nothing)."""
    for decorator in reversed((
        click.option("--host", default=None, help="Address the gateway listens on [default: 127.0.0.1]."),
        click.option("--port", type=int, default=None, help="Port the gateway listens on [default: 9090]."),
        require_migrations_option,
    )):
        func = decorator(func)
    return _options(func)


def summary(runtime: Runtime, url: str) -> str:
    """The one line printed once the services run."""
    settings, pipeline = runtime.settings, runtime.pipeline
    where = f"listening on {url}" if url else "running"

    def count(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    return (
        f"core {'+'.join(runtime.services)} {where} · store {redacted_url(settings['store'])} · "
        f"pubsub {redacted_url(settings['pubsub']) or 'none'} · supervisor {runtime.supervisor_scheme or 'none'} · "
        f"{count(len(pipeline.sources), 'source')}, "
        f"{count(len(pipeline.flows), 'flow')}, {count(len(pipeline.destinations), 'destination')} "
        "(Ctrl-C to stop)"
    )


#: Net allocations between two young-generation collections (CPython's default: 700).
GC_THRESHOLD = 20_000


def settle_heap() -> None:
    """Move what start-up built (modules, plugins, the pipeline) out of the collector's reach,
    and collect the young generation less often.

    A service answers thousands of requests a second, each allocating and freeing a few
    hundred objects; with CPython's defaults the objects of the requests in flight trigger a
    collection every few requests and a full one, traversing every module's objects, every
    second or two: a fifth of the gateway's CPU per event. Frozen objects are never traversed,
    and the garbage that only the collector frees (reference cycles) is still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


def _scheduler() -> Callable[..., Coroutine[Any, Any, None]]:
    try:
        from core.scheduler.service import run_scheduler
    except ImportError as exc:
        raise CoreError(f"the scheduler is not available in this installation: {exc}") from None
    return run_scheduler


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def handle(signum: int) -> None:
        if stop.is_set():
            click.echo("core: forced exit", err=True)
            os._exit(128 + signum)
        click.echo(f"core: {signal.Signals(signum).name} received, stopping… (again to force)", err=True)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, handle, signum)


async def serve(settings: Settings, services: Sequence[str], *, no_plugins: bool = False) -> None:
    """Open one runtime, run ``services`` on it until SIGTERM/SIGINT, close it."""
    from core.admin.service import listen as listen_admin
    from core.admin.service import run_admin
    from core.gateway.service import Gateway, listen, run_gateway
    from core.observability.http import SchedulerListener

    stop = asyncio.Event()
    _on_signals(stop)
    # The port first: taken, it is reported before anything opens or starts.
    sock = listen(settings["gateway.host"], settings["gateway.port"]) if "gateway" in services else None
    try:
        admin_sock = listen_admin(settings) if "admin" in services else None
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    click.echo(f"core: starting {'+'.join(services)}…", err=True)
    tracing.setup_from_env("+".join(services))
    try:
        runtime = await Runtime.open(settings, services=services, no_plugins=no_plugins)
    except BaseException:
        for bound in (sock, admin_sock):
            if bound is not None:
                bound.close()
        raise
    settle_heap()
    for record in runtime.host.broken():
        click.secho(f"core: plugin {record.name} ({record.distribution}) is not loaded: {record.error}"
                    " (see core plugins list; CORE_STRICT_PLUGINS=1 refuses to start)", fg="yellow", err=True)
    listener: SchedulerListener | None = None
    try:
        await check_pending(runtime, require=required_migrations())
        if "scheduler" in services and "gateway" not in services:  # a lone scheduler: its own listener
            listener = SchedulerListener(runtime)
            await listener.start()
            click.echo(summary(runtime, "") + f" · health and metrics on {listener.url}")

        def ready(gateway: Gateway) -> None:
            click.echo(summary(runtime, gateway.url))

        # The scheduler stops first, the gateway once its loads are done: a load still posting
        # to a route of this gateway (the quickstart's demo warehouse) is not refused mid-stop.
        gateway_stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if "scheduler" in services:
            def scheduler_ready(ready: bool) -> None:
                if listener is not None:
                    listener.ready = ready

            tasks.append(asyncio.create_task(_scheduler()(runtime, stop, on_ready=scheduler_ready)))
        if "gateway" in services:
            tasks.append(asyncio.create_task(run_gateway(runtime, gateway_stop, on_ready=ready, sock=sock)))
        if admin_sock is not None:
            def admin_ready(url: str) -> None:
                if services == ("admin",):
                    click.echo(summary(runtime, url))
                else:
                    click.echo(f"core: admin API on {url}/admin/api (OpenAPI: {url}/admin/api/openapi.json)")

            tasks.append(asyncio.create_task(run_admin(runtime, gateway_stop, sock=admin_sock, on_ready=admin_ready)))

        scheduling = tasks[:1] if "scheduler" in services else []

        async def stop_gateway_last() -> None:
            await stop.wait()
            if scheduling:
                await asyncio.wait(scheduling)
            gateway_stop.set()

        def failed(task: asyncio.Task[None]) -> None:  # one service failing stops the others
            if not task.cancelled() and task.exception() is not None:
                stop.set()
                gateway_stop.set()

        for task in tasks:
            task.add_done_callback(failed)
        tasks.append(asyncio.create_task(stop_gateway_last()))
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
    finally:
        if listener is not None:
            await listener.stop()
        await runtime.close()
        for bound in (sock, admin_sock):
            if bound is not None:
                bound.close()  # a service that failed before serving leaves it to us (closing twice is harmless)
    click.echo("core: stopped", err=True)


def _refuse_the_template(settings: Settings) -> None:
    """Refuse to run in core's own copy of the quickstart: its database would be written inside
    the installed package. ``core init`` makes a project of the user's own instead."""
    template = (Path(__file__).resolve().parent.parent / "scaffold").resolve()
    if settings.root.resolve().is_relative_to(template):
        raise CoreError(
            f"{settings.root} is core's template of the quickstart, inside the installed package: "
            "its database would be written there",
            hint="make a project of your own: core init my-pipeline && cd my-pipeline && core start",
        )


def _run(ctx: Context, services: Sequence[str], app: str | None, config_path: str | None,
         host: str | None, port: int | None) -> None:
    ctx = Context(config=config_path or ctx.config, app=app or ctx.app, no_plugins=ctx.no_plugins)
    settings = ctx.settings(**{"gateway.host": host, "gateway.port": port})
    _refuse_the_template(settings)
    secrets = logs.secrets_of(settings.values, settings.options) + admin_secrets(settings["admin.tokens"])
    logs.configure(settings["log.level"], settings["log.format"], secrets)
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(settings, services, no_plugins=ctx.no_plugins))


@click.group("start", invoke_without_command=True)
@_gateway_options
@click.pass_context
@friendly
def start(click_ctx: click.Context, app: str | None, config_path: str | None,
          host: str | None, port: int | None) -> None:
    """Run the gateway, the scheduler and the admin API in one process."""
    if click_ctx.invoked_subcommand is None:
        _run(click_ctx.ensure_object(Context), ("gateway", "scheduler", "admin"), app, config_path, host, port)


@start.command("gateway")
@_gateway_options
@pass_context
@friendly
def gateway(ctx: Context, app: str | None, config_path: str | None, host: str | None, port: int | None) -> None:
    """Run the gateway only: triggers in, events and jobs to the store."""
    _run(ctx, ("gateway",), app, config_path, host, port)


@start.command("scheduler")
@_options
@pass_context
@friendly
def scheduler(ctx: Context, app: str | None, config_path: str | None) -> None:
    """Run the scheduler only: jobs from the store to destinations (it listens on no port)."""
    _run(ctx, ("scheduler",), app, config_path, None, None)


@start.command("admin")
@_options
@pass_context
@friendly
def admin(ctx: Context, app: str | None, config_path: str | None) -> None:
    """Run the admin API only, on admin.host:admin.port (loopback unless admin.tokens is set)."""
    _run(ctx, ("admin",), app, config_path, None, None)
