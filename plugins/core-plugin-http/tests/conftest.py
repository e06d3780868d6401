"""A real HTTP receiver on loopback (the standard library's server, in a thread) that verifies
every Standard Webhooks signature with an independent implementation, ``standardwebhooks``."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook

OLD = "whsec_" + base64.b64encode(b"the-old-secret-0123456789abcdef!").decode()
NEW = "whsec_" + base64.b64encode(b"the-new-secret-0123456789abcdef!").decode()
#: What each path answers: status and headers.
ANSWERS: dict[str, tuple[int, dict[str, str]]] = {
    "/ok": (200, {}),
    "/busy": (429, {"Retry-After": "7"}),
    "/down": (500, {}),
    "/missing": (404, {}),
    "/moved": (302, {"Location": "/ok"}),
    "/timeout": (408, {}),
    "/slow": (200, {}),  # answered after SLOW seconds
}
#: Seconds the receiver takes to answer ``/slow``.
SLOW = 1.0


@dataclass
class Receiver:
    """What the receiver got: each request's path, headers, body and whether it verified."""

    port: int
    secret: str = NEW
    got: list[dict[str, Any]] = field(default_factory=list)

    def url(self, path: str = "/ok") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                Webhook(state.secret).verify(body, headers)
                verified = True
            except Exception:  # noqa: BLE001 - any failure to verify
                verified = False
            state.got.append({"path": self.path, "headers": headers, "body": body, "verified": verified})
            if self.path == "/slow":
                time.sleep(SLOW)
            status, extra = ANSWERS.get(self.path, (404, {}))
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
