"""The registration: the scheme is served, and a bad URL or option is refused clearly."""

from __future__ import annotations

import pytest
from core.testing import create_adapter
from hookspecs import CoreError

from core_plugin_etcd.supervisor import EtcdSupervisor


def test_the_scheme_builds_a_etcd_supervisor(etcd_address: str) -> None:
    adapter = create_adapter("supervisor", f"etcd://{etcd_address}?node_ttl=30")
    assert isinstance(adapter, EtcdSupervisor) and adapter.node_ttl == 30


@pytest.mark.parametrize("url", ["etcd://127.0.0.1:99999", "etcd:///nohost", "etcd://h:2379/some/path"])
def test_a_bad_url_is_refused_naming_the_form(url: str) -> None:
    with pytest.raises(CoreError, match="etcd://HOST:PORT"):
        create_adapter("supervisor", url)


def test_a_node_ttl_below_etcd_minimum_is_refused() -> None:
    with pytest.raises(CoreError, match="node_ttl"):
        create_adapter("supervisor", "etcd://127.0.0.1:2379?node_ttl=1")


async def test_an_agent_that_does_not_answer_is_a_clear_error() -> None:
    from core.testing import free_port

    adapter = create_adapter("supervisor", f"etcd://127.0.0.1:{free_port()}?timeout=2")
    with pytest.raises(ConnectionError, match=r"supervisor etcd://127\.0\.0\.1"):
        await adapter.open()
