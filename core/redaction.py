"""Configuration fit for a listing (``core config show``, the admin API's ``/options``): a URL
through :func:`hookspecs.redacted_url` (no password, no secret query value), an adapter option
its schema marks ``secret`` as ``***``, and in free-form tables (sources, destinations) a value
whose key names a secret (``api_token``, ``password``...) as ``***``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.config import KEYS, Settings
from core.plugins import PluginHost
from hookspecs import Option, redacted_url

SECRET = "***"


def _names_a_secret(key: str) -> bool:
    """Whether ``key`` names a secret, by the rule :func:`redacted_url` applies to query keys."""
    return redacted_url(f"?{key}=x").endswith(SECRET)


def shown(key: str, value: Any, schema: Mapping[str, Option] | None) -> Any:
    """``value`` of option ``key`` fit for a listing (tables walked, secrets replaced)."""
    option = (schema or {}).get(key)
    if (option is not None and option.secret) or (option is None and _names_a_secret(key)):
        return SECRET
    if isinstance(value, Mapping):
        return {k: shown(k, v, None) for k, v in value.items()}
    if isinstance(value, str) and "://" in value:
        return redacted_url(value)
    return value


def _schemas(host: PluginHost, name: str) -> dict[str, Mapping[str, Option]]:
    """The option schemas of the adapters named ``name``, by kind."""
    return {o.kind: o.registration.options or {} for o in host.registry.offers if o.registration.name == name}


def options_rows(host: PluginHost) -> list[tuple[str, Any]]:
    """``(options.NAME.key, value)`` for every configured option, secrets replaced."""
    rows: list[tuple[str, Any]] = []
    for name, options in sorted(host.settings.options.items()):
        schemas = _schemas(host, name)
        merged: dict[str, Option] = {k: o for schema in schemas.values() for k, o in schema.items()}
        for key, value in (options.items() if isinstance(options, Mapping) else []):
            if key in schemas and isinstance(value, Mapping):  # [options.NAME.KIND]
                rows += [(f"options.{name}.{key}.{k}", shown(k, v, schemas[key])) for k, v in value.items()]
            else:
                rows.append((f"options.{name}.{key}", shown(key, value, merged if schemas else None)))
    return rows


def shown_values(settings: Settings) -> dict[str, Any]:
    """Every key's value fit for a listing: URLs redacted, secret keys replaced."""
    return {k.name: SECRET if k.secret and v else redacted_url(v) if isinstance(v, str) and "://" in v else v
            for k in KEYS for v in [settings[k.name]]}
