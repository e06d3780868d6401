"""The pluggy markers of the ``core`` project.

Every hookspec is declared with :data:`hookspec` and every plugin implements hooks with
:data:`hookimpl`; both are bound to the project name ``core``.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "core"

#: The version of this contract (hookspecs, protocols, data types), ``MAJOR.MINOR``. A plugin
#: declares the range it supports as ``CORE_CONTRACT = ">=1.0,<2"`` in its entry-point module;
#: docs/compatibility.md says what bumps which part.
CONTRACT = "1.0"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
