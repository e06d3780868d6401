"""An optional suite for a plugin's packaging: its ``core.plugins`` entry point names the light
plugin module, importing that module leaves the service's SDK unimported (``core`` imports every
plugin module at start, so an SDK costs only those who use it), and a bad option in the
configuration is a :class:`~core.errors.PluginError`, not a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any, ClassVar

import pytest

from core.errors import PluginError
from core.testing._base import CapabilitySuite, create_adapter


class PluginPackagingSuite(CapabilitySuite):
    """Subclass it and set the class attributes.

    :cvar plugin_name: the entry point's name in the group ``core.plugins``.
    :cvar plugin_module: the module it names (the light one, registering adapters).
    :cvar sdk_packages: top-level packages importing ``plugin_module`` must not import.
    :cvar bad_option: ``(kind, url, options, name)``: creating that adapter must fail with a
        :class:`~core.errors.PluginError` that names ``name``.
    """

    plugin_name: ClassVar[str] = ""
    plugin_module: ClassVar[str] = ""
    sdk_packages: ClassVar[tuple[str, ...]] = ()
    bad_option: ClassVar[tuple[str, str, Mapping[str, Any], str] | None] = None

    def test_entry_point_names_the_light_plugin_module(self) -> None:
        [entry] = [e for e in entry_points(group="core.plugins") if e.name == self.plugin_name]
        assert entry.value == self.plugin_module

    def test_importing_the_plugin_module_does_not_import_the_sdk(self) -> None:
        code = (
            f"import sys, {self.plugin_module}\n"
            f"loaded = [m for m in sys.modules if m.split('.')[0] in {self.sdk_packages!r}]\n"
            "assert not loaded, loaded\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True)

    def test_a_bad_option_in_configuration_is_a_plugin_error_not_a_traceback(self) -> None:
        if self.bad_option is None:
            pytest.fail("set bad_option on the PluginPackagingSuite subclass", pytrace=False)
        kind, url, options, name = self.bad_option
        with pytest.raises(PluginError, match=name):
            create_adapter(kind, url, dict(options))
