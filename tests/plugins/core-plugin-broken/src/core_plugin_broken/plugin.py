"""Raises on import, as a plugin with a missing dependency would."""

raise RuntimeError("boom: this plugin cannot be imported")
