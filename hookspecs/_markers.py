"""The pluggy markers of the ``core`` project.

Every hookspec is declared with :data:`hookspec` and every plugin implements hooks with
:data:`hookimpl`; both are bound to the project name ``core``.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "core"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
