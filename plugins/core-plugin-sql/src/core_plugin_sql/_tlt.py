"""TLT: SQL templates in a sandboxed Jinja2 environment where values are bound parameters.

Every ``{{ expression }}`` becomes a placeholder (``:p0``, ``:p1``…) and its value goes to the
parameters: a value can never become SQL text, whatever it holds. Two filters produce SQL of
their own, and only from what they check: ``{{ name | ident }}`` quotes an identifier (letters,
digits, ``_``; ``schema.table`` allowed) with the dialect's quoting, and ``{{ values | inlist }}``
binds each item of a list (``(:p0, :p1)``) for ``IN``. ``{% if %}``, ``{% for %}`` and the rest
of Jinja work as usual; an undefined variable is an error naming it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any

from core.sqlstore import split_statements
from hookspecs import CoreError, RenderedSQL
from jinja2 import StrictUndefined, TemplateError, Undefined
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy.engine import Dialect

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_PLACEHOLDER = re.compile(r"(?<![:\w]):(p\d+)\b")


class _SQL(str):
    """SQL text made by a filter of this module (quoted identifiers, placeholders)."""


class _Binder:
    def __init__(self, dialect: Dialect | None) -> None:
        self.dialect = dialect
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"


_current: ContextVar[_Binder] = ContextVar("core_plugin_sql_binder")


def _finalize(value: Any) -> Any:
    if isinstance(value, _SQL):
        return value
    if isinstance(value, Undefined):
        str(value)  # raises: StrictUndefined names the variable, the sandbox the unsafe attribute
    return _current.get().bind(value)


def _ident(value: Any) -> _SQL:
    if not isinstance(value, str) or not _IDENT.match(value):
        raise CoreError(f"{value!r} is not an identifier the ident filter accepts",
                        hint="use letters, digits and '_' (schema.table allowed)")
    dialect = _current.get().dialect
    if dialect is None:
        return _SQL(value)
    prep = dialect.identifier_preparer
    return _SQL(".".join(prep.quote(part) for part in value.split(".")))


def _inlist(values: Any) -> _SQL:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise CoreError(f"the inlist filter needs a list, not {type(values).__name__}")
    binder = _current.get()
    items = [binder.bind(v) for v in values]
    if not items:
        raise CoreError("the inlist filter got an empty list", hint="an IN () of nothing is not valid SQL")
    return _SQL("(" + ", ".join(items) + ")")


_ENV = SandboxedEnvironment(finalize=_finalize, undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_ENV.filters["ident"] = _ident
_ENV.filters["inlist"] = _inlist


def render(template: str, variables: Mapping[str, Any] | None = None, *, dialect: Dialect | None = None,
           where: str = "template") -> RenderedSQL:
    """Render ``template``; every value it outputs becomes a bound parameter.

    :param dialect: quotes ``ident`` identifiers the way the database does.
    :param where: names the template in errors (a file path).
    """
    binder = _Binder(dialect)
    token = _current.set(binder)
    try:
        text = _ENV.from_string(template).render(**dict(variables or {}))
    except TemplateError as exc:
        raise CoreError(f"{where}: {type(exc).__name__}: {exc}",
                        hint="pass template variables with --var NAME=VALUE; values are bound, never pasted") from None
    finally:
        _current.reset(token)
    statements = split_statements(text)
    for statement in statements:
        if _quoted_placeholder(statement):
            raise CoreError(f"{where}: a {{{{ value }}}} is inside quotes ('{{{{ x }}}}')",
                            hint="write it without quotes: values are bound as parameters")
    return RenderedSQL(statements, binder.params)


def _quoted_placeholder(statement: str) -> bool:
    return any(_PLACEHOLDER.search(literal) for literal in re.findall(r"'(?:[^']|'')*'", statement))


def params_of(statement: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters one statement uses."""
    return {name: params[name] for name in _PLACEHOLDER.findall(statement) if name in params}
