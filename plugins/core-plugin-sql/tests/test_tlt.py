"""TLT: templates render to statements whose values are bound parameters, on every database."""

from __future__ import annotations

from typing import Any

import pytest
from hookspecs import CoreError, Toolkit

from core_plugin_sql import SQLDestination, render

HOSTILE = "x'); DROP TABLE notes; --"


def test_every_value_becomes_a_parameter() -> None:
    sql = render("SELECT * FROM t WHERE a = {{ a }} AND b IN {{ bs | inlist }} {% if c %}AND c = {{ c }}{% endif %}",
                 {"a": HOSTILE, "bs": [1, 2], "c": None})
    assert list(sql.statements) == ["SELECT * FROM t WHERE a = :p0 AND b IN (:p1, :p2)"]
    assert sql.params == {"p0": HOSTILE, "p1": 1, "p2": 2}
    assert "DROP" not in str(sql)


def test_identifiers_are_checked_and_quoted() -> None:
    from sqlalchemy.dialects import mysql, postgresql

    pg: Any = postgresql.dialect()  # type: ignore[no-untyped-call]
    my: Any = mysql.dialect()
    assert str(render("SELECT 1 FROM {{ t | ident }}", {"t": "s.orders"}, dialect=pg)) == "SELECT 1 FROM s.orders;"
    assert "`select`" in str(render("SELECT 1 FROM {{ t | ident }}", {"t": "select"}, dialect=my))
    with pytest.raises(CoreError, match="is not an identifier"):
        render("SELECT 1 FROM {{ t | ident }}", {"t": "orders; DROP TABLE x"})


@pytest.mark.parametrize(("template", "message"), [
    ("SELECT {{ missing }}", "'missing' is undefined"),
    ("SELECT '{{ a }}'", "inside quotes"),
    ("SELECT {{ a.__class__.__mro__ }}", "SecurityError|unsafe"),
    ("SELECT {{ a", "TemplateSyntaxError"),
])
def test_template_mistakes_are_clear_errors(template: str, message: str) -> None:
    with pytest.raises(CoreError, match=message):
        render(template, {"a": "v"}, where="q.sql")


async def test_a_hostile_value_is_stored_as_data(db_url: str) -> None:
    destination = SQLDestination("wh", [], url=db_url)
    toolkit = Toolkit(logger=__import__("logging").getLogger("t"))
    await destination.init(toolkit)
    try:
        await destination.run_operation(destination.render("CREATE TABLE notes (body VARCHAR(200))"))
        await destination.run_operation(destination.render("INSERT INTO notes (body) VALUES ({{ body }})",
                                                           {"body": HOSTILE}))
        result = await destination.run_query(destination.render("SELECT body FROM notes WHERE body = {{ b }}",
                                                                {"b": HOSTILE}))
        assert result.records() == [{"body": HOSTILE}]  # the table is still there, the value is data
    finally:
        await destination.shutdown(toolkit)


async def test_an_operation_is_one_transaction(pg_url: str) -> None:
    destination = SQLDestination("wh", [], url=pg_url)
    toolkit = Toolkit(logger=__import__("logging").getLogger("t"))
    await destination.init(toolkit)
    try:
        await destination.run_operation(destination.render("CREATE TABLE n (x int PRIMARY KEY)"))
        with pytest.raises(CoreError, match=r"duplicate key.*\n.*nothing of it was kept"):
            await destination.run_operation(destination.render("INSERT INTO n VALUES (1); INSERT INTO n VALUES (1)"))
        rows: Any = (await destination.run_query(destination.render("SELECT count(*) AS n FROM n"))).records()
        assert rows == [{"n": 0}]
    finally:
        await destination.shutdown(toolkit)
