"""Webhooks for ``core``: :class:`WebhookDestination` POSTs jobs to an HTTP endpoint, one request
per job or one per batch (a JSON array), signed with Standard Webhooks, behind an SSRF guard."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core_plugin_http.destination import OPTIONS, Post, WebhookDestination, retry_after

_HOMES = {
    "OPTIONS": "destination",
    "Post": "destination",
    "WebhookDestination": "destination",
    "retry_after": "destination",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'core_plugin_http' has no attribute {name!r}")
    return getattr(importlib.import_module(f"core_plugin_http.{home}"), name)


__all__ = ["OPTIONS", "Post", "WebhookDestination", "retry_after"]
