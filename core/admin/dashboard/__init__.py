"""The dashboard: server-rendered pages of the pipeline's state on the admin listener, under
``/admin/``, built on the admin API's own read and write functions (see ``docs/dashboard.md``)."""

from __future__ import annotations

from core.admin.dashboard.routes import routes

__all__ = ["routes"]
