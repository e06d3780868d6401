"""Google Cloud Pub/Sub for ``core``.

Selected by URL in configuration (``pubsub = "google://PROJECT_ID"``); the entry point is the
light :mod:`core_plugin_google.plugin`. Importing this package does not import
google-cloud-pubsub.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
