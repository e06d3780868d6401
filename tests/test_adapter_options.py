"""``hookspecs._options``: one way for every adapter to read its URL and option table."""

from __future__ import annotations

import ssl

import pytest

from core.errors import ConfigError
from hookspecs import AdapterURL, Option, choice, flag, number, path, read_options, strings, table, tls_context

OPTIONS = {
    "batch": Option(number(int, 1), 256, "a whole number >= 1"),
    "wait": Option(number(float, 0.1, 60), 1.0, "seconds from 0.1 to 60"),
    "mode": Option(choice("fast", "safe"), "safe", "fast or safe"),
    "ca": Option(path, "", "a file path"),
}


def test_the_url_query_wins_over_the_table_and_defaults_fill_the_rest() -> None:
    url = AdapterURL.split("mq://h1:1,h2:2/vhost?batch=64&wait=2.5", ("mq",))
    values = read_options("mq", {"batch": 8, "mode": "fast", **dict(url.params())}, OPTIONS)
    assert values == {"batch": 64, "wait": 2.5, "mode": "fast", "ca": ""}
    assert (url.hosts, url.path) == ("h1:1,h2:2", "/vhost")


@pytest.mark.parametrize(("key", "value"), [("batch", "0"), ("batch", True), ("wait", "61"), ("mode", "slow")])
def test_a_bad_value_is_refused_with_what_is_allowed(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        read_options("mq", {key: value}, OPTIONS)
    assert (caught.value.source, caught.value.key) == ("[options.mq] or the pubsub URL query", key)
    assert caught.value.allowed == OPTIONS[key].allowed


def test_an_unknown_key_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="nope") as caught:
        read_options("mq", {"nope": "1"}, OPTIONS, also="and raw settings as raw.<name>")
    assert caught.value.allowed == "one of: batch, wait, mode, ca; and raw settings as raw.<name>"


def test_credentials_come_from_the_url_or_the_environment_and_are_never_shown() -> None:
    environ = {"MQ_USER": "env-user", "MQ_PASSWORD": "env-pw"}
    given = AdapterURL.split("mq://u%40x:p%3Aw@host:1/v?batch=2", ("mq",))
    assert (given.credential("user", environ, "MQ_USER"), given.credential("password", environ, "MQ_PASSWORD")) == (
        "u@x", "p:w"
    )
    assert given.shown == "mq://host:1/v"
    bare = AdapterURL.split("mq://host:1", ("mq",))
    assert (bare.credential("user", environ, "MQ_USER"), bare.credential("password", {}, "MQ_PASSWORD")) == (
        "env-user", None
    )


def test_a_wrong_scheme_or_a_missing_host_is_refused_without_the_password() -> None:
    with pytest.raises(ConfigError, match="scheme") as caught:
        AdapterURL.split("http://u:secret@h", ("mq", "mqs"))
    assert caught.value.allowed == "mq:// or mqs://"
    with pytest.raises(ConfigError, match="host") as missing:
        AdapterURL.split("mq://u:secret@", ("mq",), example="mq://host:1")
    assert "secret" not in str(missing.value)


def test_paths_expand_home_and_tls_is_off_unless_asked() -> None:
    assert path("~/ca.pem").endswith("/ca.pem") and not path("~/ca.pem").startswith("~")
    assert tls_context(False) is None
    context = tls_context(True)
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED


def test_the_ready_made_converters_take_toml_values_and_url_strings() -> None:
    assert (flag(True), flag("on"), flag("0")) == (True, True, False)
    assert strings("a, b,,c") == ("a", "b", "c") and strings(["x"]) == ("x",)
    assert table({"linger.ms": 5}) == {"linger.ms": 5}
    assert number(float, 0, strict=True)("0.5") == 0.5
    assert number(int, 1)("5") == 5 and number(int, 1)(5.0) == 5
    for convert, bad in [(flag, "maybe"), (strings, [1]), (table, "x=1"), (number(float, 0, strict=True), 0),
                         (number(int, 1), 5.5), (number(int, 1), "5.5"), (number(int, 1), True)]:
        with pytest.raises(ValueError):
            convert(bad)


def test_a_secret_value_is_not_shown_when_refused() -> None:
    secret = {"token": Option(number(int, 0), 0, "a whole number", secret=True)}
    with pytest.raises(ConfigError) as caught:
        read_options("mq", {"token": "hunter2"}, secret)
    assert "hunter2" not in str(caught.value) and "(a secret, not shown)" in str(caught.value)
