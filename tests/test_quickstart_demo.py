"""Issue 22, item 9: the quickstart's flaky warehouse shows the whole life of a job within a
minute; its failure rate is an option (``[options.warehouse] failure_rate``)."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import random
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from starlette.applications import Starlette

from hookspecs import Event, Job, Queue, Then, Toolkit

QUICKSTART = Path(__file__).resolve().parent.parent / "core" / "scaffold" / "quickstart"


def quickstart() -> ModuleType:
    spec = importlib.util.spec_from_file_location("quickstart_demo_under_test", QUICKSTART / "pipeline.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def toolkit(options: dict[str, object]) -> Toolkit:
    return Toolkit(logger=logging.getLogger("test"), node_id="n", service="scheduler", options=options)


def queue(count: int) -> Queue:
    now = datetime.now(UTC)
    events = [
        Event(id=f"e{n}", source="shop", name="orders", context={}, data={"order": n}, received_at=now,
              jobs=[Job(id=f"j{n}", destination="warehouse", action="insert", event_id=f"e{n}", context={},
                        data={"order": {"order": n}}, created_at=now)])
        for n in range(count)
    ]
    return Queue(events=events)


def test_the_default_rate_discards_a_fair_share_within_a_minute() -> None:
    """With 2 retries every 10 s an order is discarded within ~30 s with probability rate**3."""
    module = quickstart()
    warehouse = module.Warehouse()
    schedule = warehouse.schedule_of("insert")
    assert schedule.interval == "@every 10s" and (1 + schedule.max_retries) * 10 <= 60
    discarded = module.FAILURE_RATE ** (1 + schedule.max_retries)
    assert 0.3 <= discarded <= 0.6  # most newcomers sending three orders see one discarded, and one succeed
    assert "failure_rate = 0.75" in (QUICKSTART / "core.toml").read_text()


@pytest.mark.parametrize(("rate", "refused"), [(0.0, 0), (1.0, 4)])
async def test_the_demo_endpoint_refuses_orders_at_the_configured_rate(rate: float, refused: int) -> None:
    module = quickstart()
    warehouse = module.Warehouse()
    await warehouse.init(toolkit({"failure_rate": rate}))
    app = Starlette(routes=module.core_gateway_routes())
    warehouse.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://demo")
    warehouse.url = "http://demo/demo/warehouse"
    (insert,) = warehouse.actions.values()
    result = await insert.load(toolkit({}), queue(4))
    await warehouse.client.aclose()
    assert isinstance(result, list) and all(isinstance(then, Then) for then in result)
    failed = [then for then in result if then.error]
    assert sum(len(then.jobs) for then in failed) == refused
    assert all(then.on_discarded == ["alerts.page"] for then in failed)


async def test_a_bad_failure_rate_is_refused_at_start() -> None:
    warehouse = quickstart().Warehouse()
    with pytest.raises(ValueError, match="failure_rate = 2: expected a number from 0 to 1"):
        await warehouse.init(toolkit({"failure_rate": 2}))


def test_the_endpoint_decides_order_by_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per order, not per batch: one unlucky draw does not fail every order of the batch."""
    draws = iter([0.1, 0.9, 0.1, 0.9])
    monkeypatch.setattr(random, "random", lambda: next(draws))
    module = quickstart()
    app = Starlette(routes=module.core_gateway_routes())

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://demo") as client:
            rows = [{"job": f"j{n}"} for n in range(4)]
            return await client.post("/demo/warehouse", json=rows, headers={module.RATE_HEADER: "0.5"})

    assert asyncio.run(post()).json() == {"stored": 2, "refused": ["j0", "j2"]}
