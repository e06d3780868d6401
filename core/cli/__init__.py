"""The ``core`` command line."""

from __future__ import annotations

import click

from core import __version__
from core.cli._common import Context
from core.cli._group import PluginCommandGroup
from core.cli.actions import actions
from core.cli.config import config
from core.cli.events import events
from core.cli.explain import explain
from core.cli.flows import flows
from core.cli.generate import generate_group
from core.cli.init import init
from core.cli.jobs import jobs
from core.cli.migrate import migrate
from core.cli.nodes import nodes
from core.cli.plugins import plugins
from core.cli.purge import purge
from core.cli.run import run_group
from core.cli.start import start
from core.cli.status import status


@click.group(cls=PluginCommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="FILE", help="core.toml or pyproject.toml to read.")
@click.option("--app", metavar="MODULE", help="Your pipeline module or .py file (config key 'app').")
@click.option("--no-plugins", is_flag=True, help="Load only the built-ins and your app.")
@click.version_option(__version__, prog_name="core")
@click.pass_context
def main(click_ctx: click.Context, config_path: str | None, app: str | None, no_plugins: bool) -> None:
    """core: receive events from sources, store them with their jobs, deliver them to
    destinations in realtime or on schedules."""
    click_ctx.obj = Context(config=config_path, app=app, no_plugins=no_plugins)


main.add_command(plugins)
main.add_command(config)
main.add_command(start)
main.add_command(init)
main.add_command(generate_group)
main.add_command(events)
main.add_command(jobs)
main.add_command(migrate)
main.add_command(nodes)
main.add_command(run_group)
main.add_command(status)
main.add_command(actions)
main.add_command(purge)
main.add_command(explain)
main.add_command(flows)
