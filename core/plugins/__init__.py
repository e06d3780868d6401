"""Plugin discovery, registration and the adapter registry."""

from __future__ import annotations

from core.plugins._collect import collect
from core.plugins._discovery import GROUP
from core.plugins._host import BUILTINS, PluginHost
from core.plugins._records import PluginRecord
from core.plugins._registry import AdapterRegistry, Offer

__all__ = ["BUILTINS", "GROUP", "AdapterRegistry", "Offer", "PluginHost", "PluginRecord", "collect"]
