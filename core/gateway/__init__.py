"""The gateway: runs the triggers and writes events with their jobs to the store, then
publishes realtime jobs. :func:`run_gateway` is the service; :class:`Ingestor` the path every
trigger shares."""

from __future__ import annotations

from core.gateway.ingest import Ingested, Ingestor
from core.gateway.service import Gateway, run_gateway

__all__ = ["Gateway", "Ingested", "Ingestor", "run_gateway"]
