"""``core start``: run the gateway and the scheduler in one process on one runtime (one store,
so one writer for SQLite); ``core start gateway`` / ``core start scheduler`` run one of them.

SIGTERM or Ctrl-C stops cleanly (a second one forces the exit); a clean stop exits 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import click

from core.cli._common import Context, friendly, pass_context
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
        click.option("--host", default=None, help="Address the gateway listens on [default: 127.0.0.1]."),
        click.option("--port", type=int, default=None, help="Port the gateway listens on [default: 9090]."),
    )):
        func = decorator(func)
    return func


def summary(runtime: Runtime, url: str) -> str:
    """The one line printed once the services run."""
    settings, pipeline = runtime.settings, runtime.pipeline
    where = f"listening on {url}" if url else "running"

    def count(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    return (
        f"core {'+'.join(runtime.services)} {where} · store {redacted_url(settings['store'])} · "
        f"pubsub {redacted_url(settings['pubsub']) or 'none'} · {count(len(pipeline.sources), 'source')}, "
        f"{count(len(pipeline.flows), 'flow')}, {count(len(pipeline.destinations), 'destination')} "
        "(Ctrl-C to stop)"
    )


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
    from core.gateway.service import Gateway, run_gateway
    from core.observability.http import SchedulerListener

    stop = asyncio.Event()
    _on_signals(stop)
    click.echo(f"core: starting {'+'.join(services)}…", err=True)
    tracing.setup_from_env("+".join(services))
    runtime = await Runtime.open(settings, services=services, no_plugins=no_plugins)
    listener: SchedulerListener | None = None
    try:
        if "gateway" not in services:  # a lone scheduler: its own /_health, /_ready, /metrics
            listener = SchedulerListener(runtime)
            await listener.start()
            click.echo(summary(runtime, "") + f" · health and metrics on {listener.url}")

        def ready(gateway: Gateway) -> None:
            click.echo(summary(runtime, gateway.url))

        coroutines: list[Coroutine[Any, Any, None]] = []
        if "gateway" in services:
            coroutines.append(run_gateway(runtime, stop, on_ready=ready))
        if "scheduler" in services:
            def scheduler_ready(ready: bool) -> None:
                if listener is not None:
                    listener.ready = ready

            coroutines.append(_scheduler()(runtime, stop, on_ready=scheduler_ready))
        def failed(task: asyncio.Task[None]) -> None:  # one service failing stops the others
            if not task.cancelled() and task.exception() is not None:
                stop.set()

        tasks = [asyncio.create_task(c) for c in coroutines]
        for task in tasks:
            task.add_done_callback(failed)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
    finally:
        if listener is not None:
            await listener.stop()
        await runtime.close()
    click.echo("core: stopped", err=True)


def _run(ctx: Context, services: Sequence[str], app: str | None, config_path: str | None,
         host: str | None, port: int | None) -> None:
    ctx = Context(config=config_path or ctx.config, app=app or ctx.app, no_plugins=ctx.no_plugins)
    settings = ctx.settings(**{"gateway.host": host, "gateway.port": port})
    logs.configure(settings["log.level"], settings["log.format"], logs.secrets_of(settings.values, settings.options))
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(settings, services, no_plugins=ctx.no_plugins))


@click.group("start", invoke_without_command=True)
@_options
@click.pass_context
@friendly
def start(click_ctx: click.Context, app: str | None, config_path: str | None,
          host: str | None, port: int | None) -> None:
    """Run the gateway and the scheduler in one process."""
    if click_ctx.invoked_subcommand is None:
        _run(click_ctx.ensure_object(Context), ("gateway", "scheduler"), app, config_path, host, port)


@start.command("gateway")
@_options
@pass_context
@friendly
def gateway(ctx: Context, app: str | None, config_path: str | None, host: str | None, port: int | None) -> None:
    """Run the gateway only: triggers in, events and jobs to the store."""
    _run(ctx, ("gateway",), app, config_path, host, port)


@start.command("scheduler")
@_options
@pass_context
@friendly
def scheduler(ctx: Context, app: str | None, config_path: str | None, host: str | None, port: int | None) -> None:
    """Run the scheduler only: jobs from the store to destinations."""
    _run(ctx, ("scheduler",), app, config_path, host, port)
