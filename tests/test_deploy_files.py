"""The deployment files (Dockerfile, compose.yaml, deploy/core@.service) name only commands the
CLI has, health URLs the services serve on their configured ports, and valid config keys.
No container engine runs here: this checks the files, it does not run them (docs/deploy.md)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import yaml

from core.cli import main
from core.config import KEYS

REPO = Path(__file__).resolve().parent.parent
ENV_KEYS = {key.env: key for key in KEYS}
PORTS = {"gateway": 9090, "scheduler": 9095, "admin": 9091}
HEALTH = re.compile(r"http://127\.0\.0\.1:(\d+)(/[\w/]*)")


def assert_command(args: list[str]) -> None:
    """``args`` (after ``core``) resolve to a command of the click CLI."""
    group: click.Command = main
    ctx = click.Context(main)
    rest = list(args)
    while isinstance(group, click.Group) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        command = group.get_command(ctx, name)
        assert command is not None, f"core {' '.join(args)}: no command {name!r}"
        group = command
    assert not isinstance(group, click.Group), f"core {' '.join(args)} names a group, not a command"
    if group.name == "start" and rest:
        assert rest[0] in PORTS, rest


def assert_health(text: str) -> None:
    for port, path in HEALTH.findall(text):
        assert path == "/_health", text
        assert int(port) in PORTS.values(), text


def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def test_compose_services_commands_health_and_environment() -> None:
    services = compose()["services"]
    assert {"postgres", "nats", "gateway-1", "gateway-2", "scheduler-1", "scheduler-2", "admin"} <= set(services)
    for name, service in services.items():
        if "command" not in service:
            continue
        assert_command(service["command"])
        for env in service.get("environment", {}):
            assert env in ENV_KEYS, f"{name}: {env} is not a config key's environment variable"
        if name != "migrate":
            role = service["command"][1]
            check = " ".join(service["healthcheck"]["test"])
            assert f"127.0.0.1:{PORTS[role]}/_health" in check, (name, check)


def test_dockerfile_commands_health_and_environment() -> None:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    assert text.count("FROM ") >= 2, "multi-stage"
    assert re.search(r"^USER (?!root)\w+", text, re.M), "non-root"
    cmd = re.search(r'^CMD \[(.*)\]$', text, re.M)
    assert cmd is not None
    assert_command([part.strip(' "') for part in cmd.group(1).split(",")])
    assert re.search(r'^ENTRYPOINT \["core"\]$', text, re.M)
    assert "HEALTHCHECK" in text
    assert_health(text)
    for env in re.findall(r"\b(CORE_[A-Z_]+)=", text):
        assert env in ENV_KEYS, env


def test_systemd_unit_commands() -> None:
    text = (REPO / "deploy" / "core@.service").read_text()
    commands = re.findall(r"^Exec\w+=\S+/core (.+)$", text, re.M)
    assert commands
    for role in PORTS:
        for line in commands:
            assert_command(shlex.split(line.replace("%i", role)))
