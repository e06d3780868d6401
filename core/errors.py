"""The errors the engine raises and reports: the contract's, re-exported for the engine's code.

They are defined in :mod:`hookspecs` because plugins raise them too (the canonical import is
``from hookspecs import ConfigError``).
"""

from __future__ import annotations

from hookspecs import ConfigError, CoreError, PipelineError, PluginError

__all__ = ["ConfigError", "CoreError", "PipelineError", "PluginError"]
