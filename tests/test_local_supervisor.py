"""What the local supervisor adds to the conformance kit: stale nodes drop out of the
registry after ``node_ttl``, supervisors of different URLs share nothing, options are checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.builtin.local.supervisor import LocalSupervisor
from core.errors import CoreError
from core.testing import make_node


async def test_a_node_without_a_recent_heartbeat_is_not_listed() -> None:
    supervisor = LocalSupervisor("local://unit-nodes", node_ttl=5)
    fresh, stale = make_node(), make_node()
    stale.heartbeat_at = datetime.now(UTC) - timedelta(seconds=60)
    await supervisor.register(fresh)
    await supervisor.register(stale)
    assert [n.id for n in await supervisor.nodes()] == [fresh.id]


async def test_different_urls_share_nothing() -> None:
    one, two = LocalSupervisor("local://unit-a"), LocalSupervisor("local://unit-b")
    assert await one.acquire("k", owner="a", ttl=30) is not None
    assert await two.acquire("k", owner="b", ttl=30) is not None


@pytest.mark.parametrize("options", [{"colour": "red"}, {"node_ttl": 0}])
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(CoreError):
        LocalSupervisor("local://", **options)
