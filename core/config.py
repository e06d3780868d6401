"""Configuration: ``core.toml`` or ``[tool.core]`` in ``pyproject.toml``, then ``CORE_*``
environment variables, then command-line flags.

Every key is declared once in :data:`KEYS` with its type, default and help, so validation,
environment names (``gateway.port`` -> ``CORE_GATEWAY_PORT``) and the docs' key table come
from one place. A bad value raises :class:`~core.errors.ConfigError` naming the file, key,
value and what is allowed.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.admin.tokens import check_tokens
from core.errors import ConfigError, CoreError

CONFIG_FILE = "core.toml"


def _url(value: Any) -> str:
    if not isinstance(value, str) or "://" not in value or not urlsplit(value).scheme:
        raise ValueError("a URL such as 'sqlite:///.core/core.db' or 'postgresql://host/db'")
    return value


def _opt_url(value: Any) -> str:
    return "" if value in ("", "none") else _url(value)


def _supervisor_url(value: Any) -> str:
    return "store" if value == "store" else _opt_url(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a string")
    return value


def _int(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"a whole number from {low} to {high}")
        return value

    return check


def _float(low: float, high: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if isinstance(value, bool) or not low <= number <= high:
            raise ValueError(f"a number from {low} to {high}")
        return number

    return check


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError("a list of plugin names (in the environment: comma-separated)")
    return tuple(v for v in value if v)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.lower() in ("1", "true", "yes", "on")
    raise ValueError("true or false")


def _choice(*allowed: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in allowed:
            raise ValueError("one of " + ", ".join(allowed))
        return value.lower()

    return check


@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key: dotted name, validator, default and a line of help."""

    name: str
    check: Callable[[Any], Any]
    default: Any
    help: str
    env_name: str = ""
    #: The value holds secrets: never shown (``core config show``, errors, the admin API).
    secret: bool = False

    @property
    def env(self) -> str:
        """The environment variable that overrides this key."""
        return self.env_name or "CORE_" + self.name.replace(".", "_").upper()


KEYS: tuple[Key, ...] = (
    Key("app", _str, "", "your pipeline: a module ('shop.pipeline') or a .py file path"),
    Key("store", _url, "sqlite:///.core/core.db", "the store URL (required; default SQLite)"),
    Key("pubsub", _opt_url, "memory://", "the pub/sub URL; empty for none"),
    Key("supervisor", _supervisor_url, "store",
        "the supervisor URL; 'store': the store's own (SQLite file, PostgreSQL), else local://; empty for none"),
    Key("wanderer", _opt_url, "sqlite:///.core/core.db", "the wanderer URL; empty for none"),
    Key("gateway.host", _str, "127.0.0.1", "address the gateway listens on"),
    Key("gateway.port", _int(0, 65535), 9090, "port the gateway listens on"),
    Key("gateway.max_body_bytes", _int(1, 1 << 30), 1 << 20, "largest request body (413 above)"),
    Key("gateway.max_json_depth", _int(1, 250), 128, "deepest nesting of arrays/objects in a JSON body (400 above)"),
    Key("gateway.rate_limit", _float(0, 1e6), 0.0, "requests a second per client (API key, else address); 0: none"),
    Key("gateway.rate_burst", _int(1, 1_000_000), 50, "requests a client may send at once above gateway.rate_limit"),
    Key("gateway.tls_certfile", _str, "", "PEM certificate (chain) file: the gateway serves HTTPS; empty: HTTP"),
    Key("gateway.tls_keyfile", _str, "", "PEM private key file of gateway.tls_certfile"),
    Key("gateway.idempotency_window", _float(1, 366 * 86400), 86400.0,
        "seconds an idempotency key deduplicates (Idempotency-Key, a draft's key)"),
    Key("gateway.flow_refresh_seconds", _float(0.01, 3600), 2.0,
        "how often a gateway reads the disabled flows again (core flows disable takes effect within it)"),
    Key("gateway.lease_seconds", _float(1, 3600), 15.0, "lease TTL of a cron/cdc trigger (failover time)"),
    Key("scheduler.batch_size", _int(1, 100_000), 500, "largest queue handed to one load"),
    Key("scheduler.poll_seconds", _float(0.01, 3600), 1.0, "how often due jobs are looked for"),
    Key("scheduler.lease_seconds", _float(1, 86400), 300.0, "claim lease; expired claims are recovered"),
    Key("scheduler.load_timeout", _float(0.01, 86400), 60.0, "seconds a load may run before its jobs fail"),
    Key("scheduler.grace_seconds", _float(0, 3600), 10.0, "on stop, how long running loads may finish"),
    Key("scheduler.host", _str, "127.0.0.1", "address of a lone scheduler's /_health, /_ready, /metrics"),
    Key("scheduler.port", _int(0, 65535), 9095, "port of a lone scheduler's listener (0: any free one)"),
    Key("nodes.heartbeat_seconds", _float(0.1, 3600), 2.0, "how often a gateway or scheduler refreshes its node"),
    Key("nodes.ttl_seconds", _float(0.5, 86400), 10.0,
        "a node silent this long is dead (core nodes list); a scheduled pass's lease TTL; several heartbeats"),
    Key("admin.host", _str, "127.0.0.1", "address the admin API listens on (non-loopback needs admin.tokens)"),
    Key("admin.port", _int(0, 65535), 9091, "port the admin API listens on (0: any free one)"),
    Key("admin.tokens", check_tokens, (), "admin API bearer tokens NAME:read|write:SECRET (env: comma-separated)",
        "CORE_ADMIN_TOKEN", secret=True),
    Key("metrics.enabled", _bool, True, "update and serve the Prometheus metrics (/metrics)"),
    Key("log.level", _choice("debug", "info", "warning", "error", "critical"), "info", "the lowest level logged"),
    Key("log.format", _choice("text", "json"), "text", "log lines as text, or one JSON object per line"),
    Key("plugins.load", _names, None, "allow-list of plugins to load (unset: all; empty: none)", "CORE_LOAD_PLUGINS"),
    Key("plugins.disable", _names, (), "plugin names not to load", "CORE_DISABLE_PLUGINS"),
    Key("plugins.strict", _bool, False, "a broken plugin stops the host", "CORE_STRICT_PLUGINS"),
)
KEYS_BY_NAME = {key.name: key for key in KEYS}


def _lease_outlives_load(values: Mapping[str, Any]) -> tuple[str, str] | None:
    load, lease = values["scheduler.load_timeout"], values["scheduler.lease_seconds"]
    if load < lease:
        return None
    return "scheduler.load_timeout", (
        f"below scheduler.lease_seconds = {lease:g}: a load outliving its claim lease would be recovered "
        "and run twice; raise scheduler.lease_seconds or lower scheduler.load_timeout"
    )


def _tls_pair(values: Mapping[str, Any]) -> tuple[str, str] | None:
    cert, key = values["gateway.tls_certfile"], values["gateway.tls_keyfile"]
    if bool(cert) == bool(key):
        return None
    missing = "gateway.tls_keyfile" if cert else "gateway.tls_certfile"
    return missing, "set with its pair: HTTPS needs both gateway.tls_certfile and gateway.tls_keyfile"


#: Rules between keys: each returns the key at fault and what is allowed, or ``None``.
RULES: tuple[Callable[[Mapping[str, Any]], tuple[str, str] | None], ...] = (_lease_outlives_load, _tls_pair)


class ConfigProblems(ConfigError):
    """Every problem of a configuration, reported at once; ``problems`` holds each one.

    Its ``source``/``key``/``value``/``allowed`` are the first problem's, so code written for
    one :class:`ConfigError` still reads it.
    """

    def __init__(self, problems: list[ConfigError]) -> None:
        first = problems[0]
        self.problems = problems
        self.source, self.key, self.value, self.allowed = first.source, first.key, first.value, first.allowed
        if len(problems) == 1:
            CoreError.__init__(self, first.message, hint=first.hint)
            return
        lines = "\n".join(
            f"  - {p.message}" + (f"\n      hint: {p.hint}" if p.hint else "") for p in problems
        )
        CoreError.__init__(self, f"{len(problems)} problems in the configuration:\n{lines}",
                           hint="fix them all, then check with: core config show")


def nearest(name: str, choices: list[str]) -> str:
    """``; did you mean 'x'?`` for the choice nearest ``name``, or an empty string."""
    near = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"; did you mean {near[0]!r}?" if near else ""


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated configuration; ``values`` by dotted key, ``origin`` says where each came from."""

    values: Mapping[str, Any]
    origin: Mapping[str, str]
    root: Path
    file: Path | None = None
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def section(self, name: str) -> dict[str, Any]:
        """Free-form options of an adapter or a user object (``[options.NAME]`` tables)."""
        return dict(self.options.get(name, {}))

    def resolve_url(self, url: str) -> str:
        """Make a relative ``sqlite:///path`` absolute against the project root.

        Only SQLite URLs name a file; ``postgresql:///db`` (a local socket) is left alone.
        """
        scheme = url.split("://", 1)[0]
        prefix = scheme + ":///"
        if scheme.split("+", 1)[0] != "sqlite":
            return url
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix:
            rest = url[len(prefix):]
            if not rest.startswith(":memory:"):
                return prefix + str(self.root / rest)
        return url


def find_config(start: Path) -> Path | None:
    """The nearest ``core.toml``, else a ``pyproject.toml`` with ``[tool.core]``, in ``start``."""
    candidate = start / CONFIG_FILE
    if candidate.is_file():
        return candidate
    pyproject = start / "pyproject.toml"
    if pyproject.is_file():
        try:
            if "core" in tomllib.loads(pyproject.read_text()).get("tool", {}):
                return pyproject
        except tomllib.TOMLDecodeError:
            return None
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("--config", "file", str(path), "the path of an existing TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "(syntax)", str(exc), "valid TOML (https://toml.io)") from None
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("core", {})
    return data


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in data.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, Mapping) and dotted not in KEYS_BY_NAME:
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def load_settings(
    config: str | Path | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read and validate configuration: file, then environment, then ``overrides`` (flags).

    ``config`` names a file explicitly; otherwise ``CORE_CONFIG``, else :func:`find_config`
    in ``cwd``. With nothing found, every key takes its default (the embedded defaults).
    """
    environ = os.environ if environ is None else environ
    cwd = (cwd or Path.cwd()).resolve()
    path: Path | None = None
    if config or environ.get("CORE_CONFIG"):
        path = Path(config or environ["CORE_CONFIG"]).expanduser()
        path = path if path.is_absolute() else cwd / path
    else:
        path = find_config(cwd)
    raw = _read(path) if path else {}
    where = str(path) if path else "(defaults)"
    problems: list[ConfigError] = []
    options = raw.pop("options", {})
    if not isinstance(options, Mapping):
        problems.append(ConfigError(where, "options", options, "a table of tables: [options.NAME]"))
        options = {}
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}

    def put(key: Key, value: Any, source: str, label: str) -> None:
        try:
            values[key.name], origin[key.name] = key.check(value), label
        except ValueError as exc:
            problems.append(ConfigError(source, key.name, "***" if key.secret else value, f"expected {exc}"))

    for name, value in _flatten(raw).items():
        key = KEYS_BY_NAME.get(name)
        if key is None:
            problems.append(ConfigError(
                where, name, value,
                f"one of: {', '.join(KEYS_BY_NAME)}, or an [options.NAME] table{nearest(name, list(KEYS_BY_NAME))}",
            ))
            continue
        put(key, value, where, where)
    for key in KEYS:
        if key.env in environ:
            put(key, environ[key.env], f"environment {key.env}", "environment")
    for name, value in (overrides or {}).items():
        if value is not None:
            put(KEYS_BY_NAME[name], value, "command line", "command line")
    for key in KEYS:
        values.setdefault(key.name, key.default)
        origin.setdefault(key.name, "default")
    for rule in RULES:
        broken = rule(values)
        if broken:
            name, allowed = broken
            source = where if origin[name] == where else origin[name]
            problems.append(ConfigError(source, name, values[name], allowed))
    if problems:
        raise ConfigProblems(problems)
    root = path.parent if path else cwd
    return Settings(values=values, origin=origin, root=root, file=path, options=dict(options))
