"""``.ci/services.py``: reuses what answers, fails loudly for what it cannot start or does not know."""

from __future__ import annotations

import importlib.util
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "services.py"


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_services_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def listening() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_knows_the_machine_services(services: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert services.main(["--list"]) == 0
    listed = capsys.readouterr().out.split()
    assert {"postgresql", "redis", "rabbitmq", "nats", "mariadb", "mosquitto"} <= set(listed)


def test_a_service_already_answering_is_reused(services: ModuleType, listening: int) -> None:
    def start() -> None:
        raise AssertionError("a running service was started again")

    services.service("fake")(lambda: services.ensure_port("fake", listening, start))
    assert services.main(["fake"]) == 0


def test_a_service_that_does_not_come_up_fails(services: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    services.service("fake")(lambda: services.ensure_port("fake", port, lambda: None, wait=0.5))
    assert services.main(["fake"]) == 1
    assert f"nothing answers on 127.0.0.1:{port}" in capsys.readouterr().err


def test_a_failing_start_command_fails(services: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    def start() -> None:
        services.run([sys.executable, "-c", "import sys; sys.exit('no such cluster')"], "fake")

    services.service("fake")(lambda: services.ensure_port("fake", free_port(), start))
    assert services.main(["fake"]) == 1
    assert "no such cluster" in capsys.readouterr().err


def test_an_unknown_service_fails(services: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert services.main(["postgresql", "cassandra"]) == 2
    assert "unknown service(s) cassandra" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "variable"), [("consul", "CORE_CONSUL_FILE"), ("etcd", "CORE_ETCD_FILE")])
def test_a_session_helper_whose_address_answers_is_reused(
    services: ModuleType,
    listening: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    variable: str,
) -> None:
    address = tmp_path / "address"
    address.write_text(f"127.0.0.1:{listening}\n")
    monkeypatch.setenv(variable, str(address))
    assert services.main([name]) == 0
    assert f"{name}: already running on 127.0.0.1:{listening}" in capsys.readouterr().out


def test_a_taken_preferred_port_gives_another(services: ModuleType, listening: int) -> None:
    assert services.free_port(listening) != listening
    port = free_port()
    assert services.free_port(port) == port
