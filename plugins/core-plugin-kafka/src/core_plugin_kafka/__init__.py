"""Kafka for ``core``: a pub/sub adapter (``kafka://``) built on confluent-kafka.

This package stays light on import: the SDK is imported only when an adapter is created.
"""

from __future__ import annotations

__version__ = "0.1.0"
