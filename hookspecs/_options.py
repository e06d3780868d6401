"""Reading an adapter's settings from its URL and its ``[options.<name>]`` table, the same way
in every adapter.

An adapter factory gets the configured URL and the option table. The rules: a key given in
both the URL query and the table takes the URL's value; every option has a converter, a
default and a sentence saying what is allowed, shown when a value is refused; an unknown key
is refused with the known ones; secrets come from the URL's user part or from environment
variables, never from a configuration file; and a URL shown in a message never carries its
password, nor a message the value of a ``secret`` option. Errors are :class:`ConfigError`.

An adapter declares its schema in its registration
(:attr:`~hookspecs.AdapterRegistration.options`): the host then reads the table and the URL
query with :func:`read_options` and hands the factory the complete, converted values.
"""

from __future__ import annotations

import math
import os
import ssl
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from hookspecs._errors import ConfigError


@dataclass(frozen=True, slots=True)
class Option:
    """One option of an adapter's schema (its name is its key in the schema mapping).

    ``convert`` turns a raw value (a URL string or a TOML value) into the setting, raising
    ``ValueError`` or ``TypeError`` for a bad one; ``allowed`` says what is allowed (the hint of
    the error); ``help`` says what the option does (the plugin's option table in the docs);
    ``secret`` options are never shown, in a message or a listing, with their value.
    """

    convert: Callable[[Any], Any]
    default: Any
    allowed: str
    help: str = ""
    secret: bool = False


def number(
    kind: type[int] | type[float], low: float, high: float = math.inf, *, strict: bool = False
) -> Callable[[Any], Any]:
    """A converter to ``kind`` (``int`` or ``float``) within ``[low, high]`` (``strict``: above
    ``low``, not equal to it); booleans are refused, and so is a fraction for an ``int``."""

    def check(value: Any) -> Any:
        converted = kind(value)
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        if isinstance(value, bool) or not low <= converted <= high or (strict and converted == low):
            raise ValueError
        return converted

    return check


def choice(*allowed: str) -> Callable[[Any], str]:
    """A converter accepting one of the strings ``allowed``."""

    def check(value: Any) -> str:
        if value not in allowed:
            raise ValueError
        return str(value)

    return check


def flag(value: Any) -> bool:
    """A converter for a yes/no option: a boolean, or (from a URL query or the environment)
    ``true``/``false``, ``1``/``0``, ``yes``/``no``, ``on``/``off``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _FLAGS:
        return _FLAGS[value.lower()]
    raise ValueError


_FLAGS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


def strings(value: Any) -> tuple[str, ...]:
    """A converter for a list of strings: a TOML list, or (from a URL query) comma-separated."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError
    return tuple(v for v in value if v)


def table(value: Any) -> dict[str, Any]:
    """A converter for a table option (``[options.<name>.<option>]``; in a URL query each entry
    is ``<option>.<key>=value``), handed on as a plain ``dict``."""
    if not isinstance(value, Mapping):
        raise ValueError
    return {str(k): v for k, v in value.items()}


def path(value: Any) -> str:
    """A converter for a file path: ``~`` expanded; empty stays empty (not set)."""
    return os.path.expanduser(str(value)) if value else ""


def tls_context(tls: bool, ca: str = "", cert: str = "", key: str = "") -> ssl.SSLContext | None:
    """The client TLS context: none unless ``tls`` (a TLS scheme) or a CA or certificate path is
    set; the system CAs unless ``ca``; a client certificate ``cert`` (and its ``key``) if set."""
    if not (tls or ca or cert):
        return None
    context = ssl.create_default_context(cafile=ca or None)
    if cert:
        context.load_cert_chain(cert, key or None)
    return context


@dataclass(frozen=True, slots=True)
class AdapterURL:
    """An adapter URL taken apart: user and password unquoted (empty when absent)."""

    scheme: str
    user: str
    password: str
    hosts: str
    path: str
    query: str

    @classmethod
    def split(cls, url: str, schemes: Collection[str], kind: str = "pubsub", example: str = "") -> AdapterURL:
        """Take ``url`` apart; refuse a scheme not in ``schemes``, and (given the ``example`` to
        show) a URL naming no host."""
        parts = urlsplit(url)
        if parts.scheme not in schemes:
            raise ConfigError(f"{kind} URL", "scheme", parts.scheme, " or ".join(f"{s}://" for s in schemes))
        userinfo, _, hosts = parts.netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        split = cls(parts.scheme, unquote(user), unquote(password), hosts, parts.path, parts.query)
        if example and not hosts:
            raise ConfigError(f"{kind} URL", "host", split.shown, example)
        return split

    @property
    def shown(self) -> str:
        """The URL fit for a message: no user, password or query."""
        return f"{self.scheme}://{self.hosts}{self.path}"

    def params(self, keep_blank_values: bool = False) -> list[tuple[str, str]]:
        """The query's ``(key, value)`` pairs, in order."""
        return parse_qsl(self.query, keep_blank_values=keep_blank_values)

    def credential(self, part: str, environ: Mapping[str, str], variable: str) -> str | None:
        """``part`` (``user`` or ``password``) of the URL if given, else ``environ[variable]``."""
        given: str = getattr(self, part)
        return given or environ.get(variable)


#: Query keys whose values are never shown (the name contains one of these, any case).
_SECRET_KEYS = ("password", "passwd", "secret", "token", "key", "signature", "credential", "sas")


def redacted_url(url: str) -> str:
    """``url`` fit for a message, a log line or a listing: its password, and the value of every
    query key that names a secret (``password``, ``token``, ``*_key`` ...), replaced by ``***``."""
    head, mark, tail = url.partition("?")
    query, hash_, fragment = tail.partition("#")
    userinfo, at, _ = urlsplit(head).netloc.rpartition("@")
    if at and ":" in userinfo:
        head = head.replace(f"{userinfo}@", f"{userinfo.partition(':')[0]}:***@", 1)
    pairs = [pair.partition("=") for pair in query.split("&")]
    query = "&".join(
        f"{key}=***" if value and any(word in key.lower() for word in _SECRET_KEYS) else key + eq + value
        for key, eq, value in pairs
    )
    return head + mark + query + hash_ + fragment


class _Withheld:
    """Stands for a secret value in a message."""

    def __repr__(self) -> str:
        return "(a secret, not shown)"


_WITHHELD = _Withheld()


def read_options(
    name: str,
    given: Mapping[str, Any],
    options: Mapping[str, Option],
    *,
    kind: str = "pubsub",
    also: str = "",
) -> dict[str, Any]:
    """Every option of ``options``: converted from ``given`` (merge the table and the query
    before: ``{**table, **query}``, the URL wins), else its default.

    :param name: the adapter's name, as in ``[options.<name>]`` (for messages).
    :param also: said after the known options when a key is unknown (what else is accepted).
    :raises ConfigError: for an unknown key (naming the known ones) or a value its option
        refuses (naming what is allowed; a ``secret`` option's value is not shown).
    """
    where = f"[options.{name}] or the {kind} URL query"
    values: dict[str, Any] = {}
    for key, value in given.items():
        if key not in options:
            known = "one of: " + ", ".join(options) if options else "no options: this adapter takes none"
            raise ConfigError(where, key, value, known + (f"; {also}" if also else ""))
        option = options[key]
        try:
            values[key] = option.convert(value)
        except (TypeError, ValueError):
            shown = _WITHHELD if option.secret else value
            raise ConfigError(where, key, shown, option.allowed) from None
    for key, option in options.items():
        values.setdefault(key, option.default)
    return values
