"""A property-based fuzz of the admin API from its own OpenAPI schema (schemathesis), against a
running ``core start admin`` on a seeded SQLite store: no 5xx, and every answer conforms to the
schema (status code, content type, body)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.builtin.sqlite.store import SQLiteStore
from tests.admin_kit import HEADERS, READ, WRITE, make_project, running
from tests.scheduler_kit import write_jobs

pytestmark = pytest.mark.slow


async def _seed(path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{path}")
    await store.open()
    try:
        await write_jobs(store, "warehouse", "insert", 3)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    project = make_project(tmp_path_factory.mktemp("fuzz") / "project")
    asyncio.run(_seed(project / "core.db"))
    with running(project, CORE_ADMIN_TOKEN=f"{READ},{WRITE}") as url:
        yield url


@pytest.fixture(scope="module")
def admin_schema(admin_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{admin_url}/openapi.json", headers=HEADERS["write"])


CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_no_5xx_and_answers_match_the_schema(admin_schema: Any) -> None:
    operations = [result.ok() for result in admin_schema.get_all_operations()]
    assert len(operations) > 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case: Any) -> None:
            case.call_and_validate(headers=HEADERS["write"], checks=CHECKS)

        fuzz()
