"""The toolkit handed to every user callable (marshal, load, extract, init, shutdown)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class Toolkit:
    """Utilities and context for the code being run.

    :param logger: a logger named after the source, destination or action.
    :param node_id: the id of this running process in the supervisor's registry.
    :param service: ``"gateway"``, ``"scheduler"`` or ``"cli"``.
    :param event_id: the event being marshaled (empty in ``load``, which gets a queue).
    :param job_id: the job being marshaled (empty in ``load``).
    :param idempotency_key: the idempotency key of the event being marshaled (empty if it
        has none; in ``load``, each job has its own :attr:`~hookspecs.Job.idempotency_key`; in
        the ``extract`` of a CRON trigger, the key of the slot being fired,
        ``cron:<source>/<trigger>@<slot in UTC>``).
    :param options: the owner's options from configuration (``[destinations.NAME]`` …).
    """

    logger: logging.Logger
    node_id: str = ""
    service: str = ""
    event_id: str = ""
    job_id: str = ""
    idempotency_key: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def evolve(self, **changes: Any) -> Toolkit:
        """Return a copy with some fields changed."""
        return replace(self, **changes)
