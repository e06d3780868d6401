"""The host's side of adapter options: one convention for every adapter kind.

An adapter that declares an option schema (:attr:`hookspecs.AdapterRegistration.options`)
never sees raw configuration: the host takes its part of the ``[options.<name>]`` table,
lays the URL query over it (the URL wins) unless the query belongs to the driver
(``driver_query``), converts every value with the schema, fills in the defaults, and hands
the factory the result. A bad or unknown option is one :class:`PluginError` naming the
adapter, the option, the value (never a secret one) and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from core.config import nearest
from core.errors import ConfigError, PluginError
from hookspecs import ADAPTER_KINDS, AdapterRegistration, Option, read_options


def own_table(kind: str, registration: AdapterRegistration[Any], table: Mapping[str, Any],
              siblings: Mapping[str, AdapterRegistration[Any]]) -> dict[str, Any]:
    """The part of ``[options.<name>]`` meant for the ``kind`` adapter.

    Adapters of several kinds may share a name, and so one table (the four PostgreSQL
    adapters; the SQLite store and wanderer). A flat key goes to each adapter whose schema has
    it; ``[options.<name>.<kind>]`` to the ``kind`` adapter alone. A key that no adapter of
    that name declares stays in, for this adapter to refuse.

    :param siblings: the other adapters of the same name, by kind.
    """
    schema = registration.options or {}
    theirs = {key for other in siblings.values() for key in (other.options or {})}
    own = {
        key: value for key, value in table.items()
        if key in schema or (key not in theirs and key not in siblings and key != kind)
    }
    sub = table.get(kind, {})
    if not isinstance(sub, Mapping):
        raise PluginError(
            f"[options.{registration.name}.{kind}] must be a table, not a value",
            hint=f"make it a table of the {kind} adapter's own options",
        )
    own.update(sub)
    return own


def query_options(url: str, schema: Mapping[str, Option]) -> dict[str, Any]:
    """The options the URL query sets: ``key=value``, and ``<option>.<key>=value`` for an
    entry of a table option (one whose default is a mapping). Blank values are not set."""
    values: dict[str, Any] = {}
    for key, value in parse_qsl(urlsplit(url).query):
        head, dot, rest = key.partition(".")
        if dot and head in schema and isinstance(schema[head].default, Mapping):
            values.setdefault(head, {})[rest] = value
        else:
            values[key] = value
    return values


def adapter_options(kind: str, plugin: str, registration: AdapterRegistration[Any], url: str,
                    table: Mapping[str, Any], siblings: Mapping[str, AdapterRegistration[Any]]) -> dict[str, Any]:
    """What the factory of ``registration`` gets: every option of its schema, converted, from
    its part of ``table`` with the URL query laid over it; the raw table without a schema."""
    schema = registration.options
    if schema is None:
        return dict(table)
    name = registration.name
    adapter = f"{kind} adapter {name!r} (plugin {plugin!r})"
    given = own_table(kind, registration, table, siblings)
    origin = dict.fromkeys(given, f"[options.{name}]") | dict.fromkeys(table.get(kind, {}), f"[options.{name}.{kind}]")
    if not registration.driver_query:
        for key, value in query_options(url, schema).items():
            below = given.get(key)
            given[key] = {**below, **value} if isinstance(value, dict) and isinstance(below, Mapping) else value
            origin[key] = f"the {kind} URL query"
    try:
        return read_options(name, given, schema, kind=kind)
    except ConfigError as exc:
        where = origin.get(exc.key, f"[options.{name}]")
        if exc.key not in schema:
            raise PluginError(
                f"{adapter} has no option {exc.key!r} (set in {where}){nearest(exc.key, list(schema))}",
                hint=exc.allowed,
            ) from None
        raise PluginError(
            f"{adapter}: option {exc.key} = {exc.value!r} is not valid (set in {where})",
            hint=f"{exc.key}: {exc.allowed}",
        ) from None


def reserved_option(registration: AdapterRegistration[Any]) -> str | None:
    """An option name of ``registration`` that is an adapter kind (reserved for the
    ``[options.<name>.<kind>]`` tables), if any."""
    return next((key for key in registration.options or {} if key in ADAPTER_KINDS), None)
