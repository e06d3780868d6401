"""The model-based store test of the kit (:mod:`core.testing.store_model`) on the built-in
stores, and the proof that it catches a store that accepts illegal transitions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from core.testing import MemoryStore, StoreModelSuite, run_store_model
from hookspecs import RefusedTransition, Transition
from tests.sqlstore_kit import db_url


class TestMemoryStoreModel(StoreModelSuite):
    max_examples = 100

    @pytest.fixture
    def adapter_url(self) -> str:
        return "memory://"


class TestSQLiteStoreModel(StoreModelSuite):
    @pytest.fixture
    def adapter_url(self, tmp_path: Path) -> str:
        return db_url(tmp_path)


class AcceptsEverything(MemoryStore):
    """A broken store: it stores every transition, as stores did before issue 20."""

    async def add_transitions(self, transitions: Sequence[Transition]) -> list[RefusedTransition]:
        db = await self._tables()
        for transition in transitions:
            row = db.jobs[transition.job_id]
            row.history.append(transition)
            db.set_state(row, transition.state_after, transition.attempt, transition.due_at)
        return []


def test_the_model_catches_a_store_that_accepts_illegal_transitions() -> None:
    with pytest.raises(AssertionError, match="illegal move was stored"):
        run_store_model(AcceptsEverything, max_examples=50, shrink=False)

