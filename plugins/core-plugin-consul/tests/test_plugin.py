"""The registration: the scheme is served, and a bad URL or option is refused clearly."""

from __future__ import annotations

import pytest
from core.testing import create_adapter
from hookspecs import CoreError

from core_plugin_consul.supervisor import ConsulSupervisor


def test_the_scheme_builds_a_consul_supervisor(consul_address: str) -> None:
    adapter = create_adapter("supervisor", f"consul://{consul_address}?node_ttl=30")
    assert isinstance(adapter, ConsulSupervisor) and adapter.node_ttl == 30


@pytest.mark.parametrize("url", ["consul://127.0.0.1:99999", "consul:///nohost", "consul://h:8500/some/path"])
def test_a_bad_url_is_refused_naming_the_form(url: str) -> None:
    with pytest.raises(CoreError, match="consul://HOST:PORT"):
        create_adapter("supervisor", url)


def test_a_node_ttl_below_consul_minimum_is_refused() -> None:
    with pytest.raises(CoreError, match="node_ttl"):
        create_adapter("supervisor", "consul://127.0.0.1:8500?node_ttl=5")


async def test_an_agent_that_does_not_answer_is_a_clear_error() -> None:
    from core.testing import free_port

    adapter = create_adapter("supervisor", f"consul://127.0.0.1:{free_port()}?timeout=2")
    with pytest.raises(ConnectionError, match=r"supervisor consul://127\.0\.0\.1"):
        await adapter.open()
