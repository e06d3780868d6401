"""The SQL store's disabled flows beyond the kit's checks: the schema step from version 3."""

from __future__ import annotations

from pathlib import Path

from core.testing.data import utcnow
from hookspecs import DisabledFlow
from tests.sqlstore_kit import upgraded_from


async def test_a_version_3_database_gets_the_disabled_flows_table(tmp_path: Path) -> None:
    async with upgraded_from(tmp_path, 3, "DROP TABLE disabled_flows") as (store, old):
        assert await store.get_event(old.id) is not None
        assert await store.disabled_flows() == []
        assert await store.disable_flow(DisabledFlow(flow="web-to-crm", who="ops", created_at=utcnow())) is True
        assert [d.flow for d in await store.disabled_flows()] == ["web-to-crm"]
