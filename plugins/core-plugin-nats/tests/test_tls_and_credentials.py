"""TLS and credentials against a real NATS server of this test's own (TLS, user and password),
started from the same ``nats-server`` binary on a free port with a throw-away certificate."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from core.testing import Inbox, ack_all, bodies
from hookspecs import Message, PubSubUnavailable

from core_plugin_nats.pubsub import NatsPubSub

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def secure_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A NATS server with JetStream, TLS and user ``app`` / password ``s3cret``; its port and CA."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    port = _free_port()
    server = subprocess.Popen(
        ["/usr/sbin/nats-server", "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp_path / "js"),
         "--tls", "--tlscert", str(cert), "--tlskey", str(key), "--user", "app", "--pass", "s3cret"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert server.poll() is None and time.monotonic() < deadline, "the TLS NATS server did not start"
            time.sleep(0.05)
        yield port, cert
    finally:
        server.terminate()
        server.wait(10)


async def test_tls_with_credentials_from_the_environment(
    secure_server: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, ca = secure_server
    monkeypatch.setenv("CORE_NATS_USER", "app")
    monkeypatch.setenv("CORE_NATS_PASSWORD", "s3cret")
    adapter = NatsPubSub(f"nats+tls://127.0.0.1:{port}?tls_ca={ca}")
    await adapter.open()
    inbox = Inbox(timeout=10.0, quiet=0.2)
    try:
        inbox.follow(await adapter.subscribe("orders", group="billing"), "member")
        await adapter.publish("orders", [Message(b"over TLS")])
        got = await inbox.take(1)
        await ack_all(got)
        assert bodies(got) == [b"over TLS"]
    finally:
        await inbox.close()
        await adapter.close()


async def test_a_wrong_password_or_an_unknown_ca_is_unavailable_with_the_reason(
    secure_server: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, ca = secure_server
    monkeypatch.setenv("CORE_NATS_USER", "app")
    monkeypatch.setenv("CORE_NATS_PASSWORD", "wrong")
    cases = {
        # the server writes -ERR and closes: the client reads the reason, unless its next write
        # meets the closed socket first (a pipe broken or a connection reset: a race on the wire,
        # not ours to win)
        f"nats+tls://127.0.0.1:{port}?tls_ca={ca}&connect_timeout=2":
            "Authorization Violation|Broken pipe|Connection reset by peer",
        f"nats://app:s3cret@127.0.0.1:{port}?connect_timeout=2": "CERTIFICATE_VERIFY_FAILED",  # no tls_ca
    }
    for url, reason in cases.items():
        adapter = NatsPubSub(url)
        with pytest.raises(PubSubUnavailable, match=reason):
            await adapter.open()
        await adapter.close()
