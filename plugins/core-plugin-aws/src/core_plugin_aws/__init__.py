"""AWS SNS/SQS for ``core``.

Selected by URL in configuration (``pubsub = "aws://?region=us-east-1"``); the entry point is
the light :mod:`core_plugin_aws.plugin`. Importing this package does not import boto3.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
