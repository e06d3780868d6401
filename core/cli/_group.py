"""The ``core`` command group: the built-in commands plus those plugins add through
``core_cli_commands``, loaded only when a name is not a built-in (or for ``--help``)."""

from __future__ import annotations

import click

from core.errors import CoreError


class PluginCommandGroup(click.Group):
    """A group whose unknown sub-commands are looked up among the plugins' commands."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        cached: dict[str, click.Command] | None = ctx.meta.get("core.plugin_commands")
        if cached is not None:
            return cached
        from core.cli._common import Context

        found: dict[str, click.Command] = {}
        try:
            params = ctx.params
            host = Context(
                config=params.get("config_path"), app=params.get("app"), no_plugins=params.get("no_plugins", False)
            ).host()
        except CoreError:
            host = None  # the command that needs the host reports the error itself
        if host is not None:
            for results in host.pm.hook.core_cli_commands():
                for command in results or []:
                    if isinstance(command, click.Command) and command.name and command.name not in self.commands:
                        found.setdefault(command.name, command)
                    else:
                        click.secho(f"warning: ignoring plugin command {command!r} (taken or invalid)", err=True)
        ctx.meta["core.plugin_commands"] = found
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugin_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._plugin_commands(ctx).get(cmd_name)
