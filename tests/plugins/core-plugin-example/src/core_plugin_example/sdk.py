"""Stands for a heavy SDK (boto3, the Google client…): listing plugins must never import it."""

from __future__ import annotations

from typing import Any


class ExampleAdapter:
    def __init__(self, url: str, options: dict[str, Any]) -> None:
        self.url, self.options = url, options
