"""End to end: the quickstart pipeline under ``core start`` in a real process, fed by real
HTTP requests, its warehouse endpoint played by a local HTTP server the test controls.

It watches one order reach ``succeeded`` in the warehouse, another go ``failed`` then
``discarded`` after its retries with the ``alerts.page`` follow-up run, the realtime
``logger.log`` jobs delivered at once, and a SIGTERM that exits 0 with nothing ``executing``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.testing import QUICKSTART_APP

pytestmark = pytest.mark.slow


class Warehouse(BaseHTTPRequestHandler):
    """Answers 200 or 503 as the test says, and keeps the orders it accepted."""

    healthy = True
    accepted: list[dict[str, Any]] = []  # noqa: RUF012 - shared on purpose with the test

    def do_POST(self) -> None:
        rows = json.loads(self.rfile.read(int(self.headers["content-length"])))
        status = 200 if Warehouse.healthy else 503
        if status == 200:
            Warehouse.accepted.extend(rows)
        self.send_response(status)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def warehouse() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Warehouse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/rows"
    server.shutdown()


def core(cwd: Path, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")} | {"CORE_LOAD_PLUGINS": ""}
    result = subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if "--json" in args else result.stdout


def eventually(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.3)


def test_quickstart_delivers_retries_discards_and_stops_cleanly(tmp_path: Path, warehouse: str) -> None:
    port = free_port()
    (tmp_path / "core.toml").write_text(
        f'app = "{QUICKSTART_APP}"\n[gateway]\nport = {port}\n[options.warehouse]\nurl = "{warehouse}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")} | {"CORE_LOAD_PLUGINS": ""}
    env["CORE_ADMIN_PORT"] = "0"
    server = subprocess.Popen(
        [sys.executable, "-m", "core", "start"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    assert server.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(server.stdout or []), daemon=True)
    reader.start()  # drain the output, so the server never blocks on a full pipe
    try:
        eventually(lambda: any(f"listening on http://127.0.0.1:{port}" in line for line in lines), timeout=30)
        base = f"http://127.0.0.1:{port}"

        Warehouse.healthy = True
        ok = httpx.post(f"{base}/webhooks/orders", json={"context": {"ip": "203.0.113.9"}, "data": {"order": 1}})
        assert ok.status_code == 202
        ok_event = ok.json()["event_id"]
        jobs = core(tmp_path, "jobs", "list", "--event", ok_event, "--json")
        assert {(j["destination"], j["action"]) for j in jobs} == {("logger", "log"), ("warehouse", "insert")}
        assert all(j["status"] in ("acknowledged", "executing", "succeeded") for j in jobs)

        def statuses(event_id: str) -> dict[str, str]:
            return {f'{j["destination"]}.{j["action"]}': j["status"]
                    for j in core(tmp_path, "jobs", "list", "--event", event_id, "--json")}

        eventually(lambda: statuses(ok_event)["logger.log"] == "succeeded", timeout=10)
        eventually(lambda: statuses(ok_event)["warehouse.insert"] == "succeeded", timeout=30)
        assert [row["order"]["order"] for row in Warehouse.accepted] == [1]

        Warehouse.healthy = False
        bad = httpx.post(f"{base}/webhooks/orders", json={"data": {"order": 2}})
        assert bad.status_code == 202
        bad_event = bad.json()["event_id"]
        eventually(lambda: statuses(bad_event)["logger.log"] == "succeeded", timeout=10)
        eventually(lambda: statuses(bad_event).get("warehouse.insert") == "discarded", timeout=60)

        insert = next(j for j in core(tmp_path, "jobs", "list", "--event", bad_event, "--json")
                      if j["action"] == "insert")
        shown = core(tmp_path, "jobs", "show", insert["id"], "--json")
        path = [(t["state_before"], t["state_after"], t["attempt"]) for t in shown["transitions"]]
        assert path == [
            (None, "acknowledged", 0),
            ("acknowledged", "executing", 1), ("executing", "failed", 1),
            ("failed", "executing", 2), ("executing", "failed", 2),
            ("failed", "executing", 3), ("executing", "discarded", 3),
        ]
        assert "warehouse refused the batch" in shown["transitions"][-1]["error"]

        def page() -> Any:
            return [j for j in core(tmp_path, "jobs", "list", "--event", bad_event, "--json")
                    if j["action"] == "page" and j["status"] == "succeeded"]

        child = eventually(page, timeout=15)[0]
        assert child["parent_job_id"] == insert["id"] and child["destination"] == "alerts"

        refused = httpx.post(f"{base}/webhooks/orders", content=b"{not json")
        assert refused.status_code == 400 and "not valid JSON" in refused.json()["error"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        reader.join(timeout=5)
    output = "".join(lines)
    assert server.returncode == 0, output
    assert "core: stopped" in output
    assert core(tmp_path, "jobs", "list", "--status", "executing", "--json") == []
