"""Disable and enable a flow on a running ``core start`` beside a lone ``core start gateway`` on
the same store, through the admin API and the CLI: the events both gateways store meanwhile get
no job of the disabled flow (the other flow's job is made), an event whose every flow is
disabled is stored with no jobs, and once enabled the events get the flow's jobs again."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.admin_kit import HEADERS, core_start, ingest, run_core

pytestmark = pytest.mark.slow

APP = """
from hookspecs import Action, Destination, Flow, HttpTrigger, Schedule, Source, hookimpl

class Record(Action):
    schedule = Schedule(interval="@every 1h")

    def __init__(self, name):
        self.name = name

    async def load(self, toolkit, queue):
        pass

@hookimpl
def core_register_sources():
    return [Source("web", [HttpTrigger("track", "/track")])]

@hookimpl
def core_register_destinations():
    return [Destination("crm", [Record("notify")]), Destination("audit", [Record("log")])]

@hookimpl
def core_register_flows():
    return [Flow("web-to-crm", "web", ["crm.notify"]), Flow("web-to-audit", "web", ["audit.log"])]
"""


def jobs_of(api: httpx.Client, admin: str, event_id: str) -> list[str]:
    """The destinations of the stored event's jobs, sorted (the event must be stored)."""
    stored = api.get(f"{admin}/store/events/{event_id}")
    assert stored.status_code == 200, stored.text
    return sorted(job["destination"] for job in stored.json()["jobs"])


def until(api: httpx.Client, gateways: list[str], admin: str, expected: list[str], timeout: float = 20) -> None:
    """Post events to each gateway until one is stored with jobs of ``expected`` destinations
    (a gateway reads the disabled flows again every gateway.flow_refresh_seconds), then one more."""
    for gateway in gateways:
        deadline = time.monotonic() + timeout
        while jobs_of(api, admin, *ingest(gateway, 1)) != expected:
            assert time.monotonic() < deadline, f"the events of {gateway} never got jobs of {expected}"
            time.sleep(0.05)
        assert jobs_of(api, admin, *ingest(gateway, 1)) == expected


def flows(api: httpx.Client, admin: str) -> dict[str, dict[str, object]]:
    return {f["name"]: f for f in api.get(f"{admin}/flows").json()["flows"]}


def test_a_disabled_flow_makes_no_jobs_until_enabled(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "core.toml").write_text(
        'app = "app.py"\nstore = "sqlite:///core.db"\npubsub = "memory://"\nsupervisor = ""\nwanderer = ""\n'
        "[gateway]\nflow_refresh_seconds = 0.2\n"
    )
    cli: Callable[..., str] = lambda *args: run_core(tmp_path, "flows", *args).stdout  # noqa: E731
    with (
        core_start(tmp_path) as (gateway, admin),
        core_start(tmp_path, "gateway") as (other, _),
        httpx.Client(headers=HEADERS["write"], timeout=30) as api,
    ):
        gateways = [gateway, other]
        assert [jobs_of(api, admin, *ingest(g, 1)) for g in gateways] == [["audit", "crm"]] * 2
        listed = flows(api, admin)["web-to-crm"]
        assert listed["enabled"] is True and listed["destinations"] == ["crm"] and listed["trigger"] == "*"

        done = api.post(f"{admin}/flows/web-to-crm/disable", json={"reason": "crm is down"})
        assert done.json() == {"disabled": "web-to-crm", "by": "ops", "reason": "crm is down"}
        again = api.post(f"{admin}/flows/web-to-crm/disable")
        assert again.status_code == 409 and "disabled already" in again.json()["error"]
        unknown = api.post(f"{admin}/flows/nowhere/disable")
        assert unknown.status_code == 404 and unknown.json()["allowed"] == ["web-to-audit", "web-to-crm"]
        listed = flows(api, admin)["web-to-crm"]
        assert (listed["enabled"], listed["disabled_by"], listed["reason"]) == (False, "ops", "crm is down")
        assert listed["disabled_at"] is not None
        until(api, gateways, admin, ["audit"])

        assert "disabled web-to-audit" in cli("disable", "web-to-audit", "--reason", "quiet")
        [row] = [line.split() for line in cli("list").splitlines() if line.startswith("web-to-audit")]
        assert row[3:5] == ["audit.log", "no"] and row[-1] == "quiet"
        until(api, gateways, admin, [])  # stored, with no jobs

        assert api.post(f"{admin}/flows/web-to-crm/enable").json() == {"enabled": "web-to-crm", "by": "ops"}
        assert api.post(f"{admin}/flows/web-to-crm/enable").status_code == 409
        until(api, gateways, admin, ["crm"])
        assert "enabled web-to-audit" in cli("enable", "web-to-audit")
        until(api, gateways, admin, ["audit", "crm"])
        assert all(f["enabled"] for f in flows(api, admin).values())

