"""Idempotency keys on PostgreSQL, as real processes: 1,000 concurrent posts with one key,
through two ``core start gateway`` processes on one database, store exactly one event and
all answer ``202`` with its id (issue 16's done-when; the kit's store suite covers the rest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from core.testing import Deployment


@pytest.mark.timeout(240)
def test_one_key_through_two_gateways_stores_one_event(pg_url: str, tmp_path: Path) -> None:
    with Deployment(tmp_path, store=pg_url, pubsub="memory://") as deploy:
        deploy.check_one_key_stores_one_event(gateways=2, posts=1000)
