"""Fan-out hooks: every implementation is called. Start-up and shutdown, what the pipeline
did (events ingested, jobs transitioned), and extensions of the gateway and the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hookspecs._markers import hookspec
from hookspecs._store import Event, Transition
from hookspecs._toolkit import Toolkit


class LifecycleSpec:
    """Hooks called around the services' lives and on the data path."""

    @hookspec
    def core_startup(self, service: str, toolkit: Toolkit) -> Any:
        """React to a service starting.

        **When called:** once per process, after the adapters are open and before the first
        event or job; ``service`` is ``"gateway"``, ``"scheduler"``, ``"admin"`` or ``"cli"``.

        :param service: the service starting.
        :param toolkit: the service's toolkit (logger, node id).
        :return: ``None``, or an awaitable the host awaits before going on.

        **Example**::

            @hookimpl
            def core_startup(service, toolkit):
                toolkit.logger.info("%s starting with my plugin", service)
        """

    @hookspec
    def core_shutdown(self, service: str, toolkit: Toolkit) -> Any:
        """React to a service stopping.

        **When called:** once per process, after the last event or job and before the
        adapters close; errors are logged and do not stop the shutdown.

        :param service: the service stopping.
        :param toolkit: the service's toolkit.
        :return: ``None``, or an awaitable the host awaits.

        **Example**::

            @hookimpl
            def core_shutdown(service, toolkit):
                toolkit.logger.info("%s stopped", service)
        """

    @hookspec
    def core_event_ingested(self, events: Sequence[Event]) -> None:
        """Observe events just committed to the store, with their jobs.

        **When called:** by the gateway after each commit, once per committed batch (keep it
        fast: it is on the hot path; hand slow work to a task).

        :param events: the committed events.
        :return: nothing; the result is ignored.

        **Example**::

            @hookimpl
            def core_event_ingested(events):
                METRICS.inc("events", len(events))
        """

    @hookspec
    def core_job_transitioned(self, transitions: Sequence[Transition]) -> None:
        """Observe job transitions just recorded by the scheduler.

        **When called:** after each committed batch of transitions (hot path: keep it fast).

        :param transitions: the recorded transitions.
        :return: nothing; the result is ignored.

        **Example**::

            @hookimpl
            def core_job_transitioned(transitions):
                for t in transitions:
                    if t.state_after == "discarded":
                        ALERTS.send(t.job_id, t.error)
        """

    @hookspec
    def core_gateway_routes(self) -> list[Any]:
        """Add routes to the gateway's web application.

        **When called:** once when the gateway builds its application.

        :return: Starlette route objects (``starlette.routing.Route``, ``Mount``…); a path
            that clashes with another route stops start-up with an error naming both.

        **Example**::

            @hookimpl
            def core_gateway_routes():
                from starlette.responses import PlainTextResponse
                from starlette.routing import Route
                return [Route("/_version", lambda request: PlainTextResponse("1.0"))]
        """
        raise NotImplementedError  # declared here, implemented by plugins

    @hookspec
    def core_cli_commands(self) -> list[Any]:
        """Add sub-commands to the ``core`` command line.

        **When called:** when the ``core`` CLI starts.

        :return: ``click.Command`` objects; a name already taken is refused with a warning.

        **Example**::

            @hookimpl
            def core_cli_commands():
                import click

                @click.command("hello")
                def hello():
                    click.echo("hello from my plugin")
                return [hello]
        """
        raise NotImplementedError  # declared here, implemented by plugins
