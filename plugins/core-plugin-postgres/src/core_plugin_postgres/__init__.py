"""PostgreSQL for ``core``: store, supervisor, pub/sub, wanderer storage and a CDC source.

The adapters are selected by URL in configuration (``postgresql://…``); the entry point is
the light :mod:`core_plugin_postgres.plugin`. The CDC source is a helper users put in their
own :class:`~hookspecs.Source`: :class:`PostgresCdcTrigger` or :func:`postgres_cdc_source`.
Importing this package does not import asyncpg or SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["PostgresCdcTrigger", "__version__", "postgres_cdc_source"]

if TYPE_CHECKING:
    from core_plugin_postgres.cdc import PostgresCdcTrigger, postgres_cdc_source


def __getattr__(name: str) -> Any:
    if name in ("PostgresCdcTrigger", "postgres_cdc_source"):
        from core_plugin_postgres import cdc

        return getattr(cdc, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
