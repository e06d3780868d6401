"""The done-when of issue 16's idempotency, on SQLite: 1,000 concurrent posts with one
idempotency key, through two ``core start gateway`` processes on one SQLite file, store
exactly one event and all answer ``202`` with its id (the PostgreSQL plugin runs the same)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.testing import Deployment


@pytest.mark.timeout(180)
def test_one_key_through_two_gateways_stores_one_event(tmp_path: Path) -> None:
    with Deployment(tmp_path, store=f"sqlite:///{tmp_path / 'core.db'}", pubsub="memory://") as deploy:
        deploy.check_one_key_stores_one_event(gateways=2, posts=1000)
