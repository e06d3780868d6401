"""The host reads adapter options against the registration's schema, the same way for every
adapter kind: the table and the URL query (the URL wins, unless the query is the driver's),
typed values with defaults, and one error naming adapter, option, value and what is allowed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pluggy
import pytest

from core.config import load_settings
from core.errors import PluginError
from core.plugins import AdapterRegistry, PluginHost, PluginRecord
from hookspecs import (
    ADAPTER_KINDS,
    PROJECT_NAME,
    SPEC_CLASSES,
    AdapterRegistration,
    Capability,
    Option,
    choice,
    flag,
    hookimpl,
    number,
    read_options,
    strings,
    table,
)

#: One schema per kind; the supervisor's URL query is its driver's.
SCHEMAS: dict[str, Mapping[str, Option]] = {
    "store": {
        "batch": Option(number(int, 1), 10, "a whole number >= 1", help="rows per write"),
        "token": Option(str, "", "a string", help="the API token", secret=True),
        "shared": Option(number(int, 0), 1, "a whole number >= 0"),
    },
    "pubsub": {
        "wait": Option(number(float, 0), 1.0, "seconds, >= 0"),
        "mode": Option(choice("fast", "safe"), "safe", "fast or safe"),
        "config": Option(table, {}, "a table of raw settings"),
        "shared": Option(number(int, 0), 2, "a whole number >= 0"),
    },
    "supervisor": {"ttl": Option(number(float, 0, strict=True), 30.0, "seconds, > 0")},
    "wanderer": {"durable": Option(flag, False, "true or false")},
}
BAD = {"store": ("batch", "0"), "pubsub": ("mode", "slow"), "supervisor": ("ttl", "0"),
       "wanderer": ("durable", "maybe")}


def _factory(url: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return url, options


class Demo:
    """A plugin offering a ``demo`` adapter of every kind (and a ``raw`` store with no schema)."""

    @hookimpl
    def core_register_stores(self) -> list[AdapterRegistration[Any]]:
        return [_registration("store"),
                AdapterRegistration(name="raw", schemes=("raw",), factory=_factory)]

    @hookimpl
    def core_register_pubsubs(self) -> list[AdapterRegistration[Any]]:
        return [_registration("pubsub")]

    @hookimpl
    def core_register_supervisors(self) -> list[AdapterRegistration[Any]]:
        return [_registration("supervisor", driver_query=True)]

    @hookimpl
    def core_register_wanderers(self) -> list[AdapterRegistration[Any]]:
        return [_registration("wanderer")]


def _registration(kind: str, **fields: Any) -> AdapterRegistration[Any]:
    return AdapterRegistration(name="demo", schemes=("demo",), factory=_factory, options=SCHEMAS[kind], **fields)


def _registry(*plugins: tuple[str, object]) -> tuple[AdapterRegistry, dict[str, PluginRecord]]:
    pm = pluggy.PluginManager(PROJECT_NAME)
    for spec in SPEC_CLASSES:
        pm.add_hookspecs(spec)
    records = {}
    for name, plugin in plugins:
        pm.register(plugin, name=name)
        records[name] = PluginRecord(name=name, module=name, distribution=f"core-plugin-{name}", version="1")
    return AdapterRegistry.build(pm, records), records


@pytest.fixture
def registry() -> AdapterRegistry:
    return _registry(("demo", Demo()))[0]


def test_the_factory_gets_typed_values_with_defaults_and_the_url_as_written(registry: AdapterRegistry) -> None:
    url, options = registry.create("store", "demo://h/x?batch=64", {"token": "t0k", "shared": 3})
    assert url == "demo://h/x?batch=64"
    assert options == {"batch": 64, "token": "t0k", "shared": 3}
    assert registry.create("wanderer", "demo://h", {})[1] == {"durable": False}


def test_the_url_query_wins_over_the_table(registry: AdapterRegistry) -> None:
    _, options = registry.create("pubsub", "demo://h?wait=2.5&mode=fast", {"wait": 9, "mode": "safe"})
    assert options == {"wait": 2.5, "mode": "fast", "config": {}, "shared": 2}


def test_a_table_option_merges_its_query_entries_over_its_table(registry: AdapterRegistry) -> None:
    _, options = registry.create("pubsub", "demo://h?config.linger.ms=5", {"config": {"acks": "all", "linger.ms": 1}})
    assert options["config"] == {"acks": "all", "linger.ms": "5"}


def test_a_driver_query_is_left_to_the_driver(registry: AdapterRegistry) -> None:
    url, options = registry.create("supervisor", "demo://h/db?sslmode=require&ttl=0", {"ttl": 5})
    assert (url, options) == ("demo://h/db?sslmode=require&ttl=0", {"ttl": 5.0})


@pytest.mark.parametrize("kind", list(ADAPTER_KINDS))
def test_a_bad_value_names_the_adapter_the_option_the_value_and_what_is_allowed(
    registry: AdapterRegistry, kind: str
) -> None:
    key, value = BAD[kind]
    with pytest.raises(PluginError) as caught:
        registry.create(kind, "demo://h", {key: value})
    message = str(caught.value)
    assert f"{kind} adapter 'demo' (plugin 'demo')" in message
    assert f"{key} = {value!r} is not valid" in message
    assert f"hint: {key}: {SCHEMAS[kind][key].allowed}" in message
    assert message.count("\n") == 1  # one message and its hint, nothing wrapped


@pytest.mark.parametrize("kind", list(ADAPTER_KINDS))
def test_an_unknown_option_names_the_known_ones(registry: AdapterRegistry, kind: str) -> None:
    with pytest.raises(PluginError) as caught:
        registry.create(kind, "demo://h", {"nope": 1})
    message = str(caught.value)
    assert f"{kind} adapter 'demo' (plugin 'demo') has no option 'nope'" in message
    assert "one of: " + ", ".join(SCHEMAS[kind]) in message


def test_an_unknown_option_in_the_url_query_is_refused_unless_the_query_is_the_drivers(
    registry: AdapterRegistry,
) -> None:
    with pytest.raises(PluginError, match="has no option .nope. \\(set in the store URL query"):
        registry.create("store", "demo://h?nope=1", {})
    assert registry.create("supervisor", "demo://h?nope=1", {})[1] == {"ttl": 30.0}


def test_a_secret_value_is_never_shown(registry: AdapterRegistry) -> None:
    class Key:  # a value its converter refuses
        def __str__(self) -> str:
            raise TypeError

        def __repr__(self) -> str:
            return "s3cret"

    with pytest.raises(PluginError) as caught:
        registry.create("store", "demo://h", {"token": Key()})
    assert "s3cret" not in str(caught.value)
    assert "token = (a secret, not shown) is not valid" in str(caught.value)


def test_adapters_sharing_a_name_share_the_table_by_key_and_by_kind(registry: AdapterRegistry) -> None:
    given = {"shared": 5, "batch": 2, "wait": 3, "pubsub": {"shared": 7}, "wanderer": {"durable": "yes"}}
    assert registry.create("store", "demo://h", given)[1] == {"batch": 2, "token": "", "shared": 5}
    assert registry.create("pubsub", "demo://h", given)[1] == {"wait": 3.0, "mode": "safe", "config": {}, "shared": 7}
    assert registry.create("wanderer", "demo://h", given)[1] == {"durable": True}
    with pytest.raises(PluginError, match=r"\[options.demo.store\] must be a table"):
        registry.create("store", "demo://h", {"store": 3})


def test_a_registration_without_a_schema_gets_the_raw_table(registry: AdapterRegistry) -> None:
    assert registry.create("store", "raw://h?x=1", {"anything": [1]}) == ("raw://h?x=1", {"anything": [1]})


def test_an_option_named_like_an_adapter_kind_breaks_the_registration() -> None:
    class Clash:
        @hookimpl
        def core_register_stores(self) -> list[AdapterRegistration[Any]]:
            return [AdapterRegistration(name="clash", schemes=("clash",), factory=_factory,
                                        options={"pubsub": Option(str, "", "a string")})]

    registry, records = _registry(("clash", Clash()))
    assert registry.offers == []
    assert records["clash"].status == "error"
    assert "declares an option 'pubsub', the name of an adapter kind" in str(records["clash"].error)


def test_a_broker_registration_passing_its_option_dict_re_parses_idempotently() -> None:
    """The broker plugins' factories read ``{**options, **query}`` with their own dict again."""
    schema = {"prefix": Option(str, "core", "a string"), "batch": Option(number(int, 1), 256, "a whole number >= 1"),
              "topics": Option(strings, ("a",), "names")}

    def factory(url: str, options: dict[str, Any]) -> dict[str, Any]:
        return read_options("broker", {**options, **dict(parse_qsl(urlsplit(url).query))}, schema)

    class Broker:
        @hookimpl
        def core_register_pubsubs(self) -> list[AdapterRegistration[Any]]:
            return [AdapterRegistration(name="broker", schemes=("mq",), factory=factory, options=schema)]

    registry, _ = _registry(("broker", Broker()))
    assert registry.create("pubsub", "mq://h?batch=8&topics=x,y", {"prefix": "shop", "batch": 2}) == {
        "prefix": "shop", "batch": 8, "topics": ("x", "y"),
    }


def test_the_built_in_adapters_are_checked_by_the_host(project: object) -> None:
    settings = load_settings(environ={"CORE_LOAD_PLUGINS": ""})
    bad = PluginHost(settings)
    with pytest.raises(PluginError, match=r"store adapter 'sqlite' \(plugin 'sqlite'\): option max_batch = 0"):
        bad.registry.create("store", "sqlite:///:memory:", {"max_batch": 0})
    with pytest.raises(PluginError, match="has no option 'max_pendng'.*\n  hint: one of: max_pending, publish_timeout"):
        bad.registry.create("pubsub", "memory://", {"max_pendng": 1})
    with pytest.raises(PluginError, match="supervisor adapter 'local'.*node_ttl = '0'"):
        bad.registry.create("supervisor", "local://?node_ttl=0", {})
    wanderer = bad.registry.create("wanderer", "sqlite:///:memory:", {"commit_delay_ms": 1, "busy_timeout_ms": 9})
    assert wanderer.busy_timeout_ms == 9  # the store's key is the store's; the shared key reaches both


def test_capabilities_are_an_enum_accepting_their_strings() -> None:
    registration = AdapterRegistration(name="x", schemes=("x",), factory=_factory, capabilities=frozenset({"purge"}))
    assert registration.capabilities == {Capability.PURGE}
    assert all(isinstance(c, Capability) for c in registration.capabilities)
    assert Capability.RECONNECT == "reconnect"
    with pytest.raises(ValueError, match=r"unknown capabilities \['purj'\]; known: reconnect, purge"):
        AdapterRegistration(name="x", schemes=("x",), factory=_factory, capabilities=frozenset({"purj"}))


def test_the_kinds_table_names_each_kinds_protocol_and_registration_hook() -> None:
    hooks = {name for spec in SPEC_CLASSES for name in vars(spec)}
    assert list(ADAPTER_KINDS) == ["store", "pubsub", "supervisor", "wanderer"]
    for name, kind in ADAPTER_KINDS.items():
        assert kind.name == name and kind.hook in hooks
        assert kind.protocol.__name__.lower() == name
