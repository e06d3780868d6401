"""One real ``core start gateway`` process for the module's tests: a SQLite store in pytest's
temporary directory, an application registering a :class:`SegmentSource` whose write keys
come from ``SEGMENT_WRITE_KEYS``, and logging at DEBUG (the canary test reads the log)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from core.testing import Deployment

#: The write keys the gateway accepts (a rotation: both are valid).
WRITE_KEY = "wk_canary_7d3f9a0c51e24b6f"
OTHER_KEY = "wk_second_0a1b2c3d4e5f"

APP = """
from core_plugin_segment import SegmentSource
from hookspecs import Action, Destination, Flow, Secret, hookimpl


class Keep(Action):
    name = "keep"


@hookimpl
def core_register_sources():
    return [SegmentSource("web", write_keys=Secret(env="SEGMENT_WRITE_KEYS")),
            SegmentSource("mobile", write_keys=Secret(env="SEGMENT_MOBILE_KEY"), prefix="/mobile")]


@hookimpl
def core_register_destinations():
    return [Destination("sink", actions=[Keep()])]


@hookimpl
def core_register_flows():
    return [Flow("web-to-sink", source="web", actions=["sink.keep"])]
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A running gateway process serving the Segment API (stopped cleanly after the module)."""
    env = {"SEGMENT_WRITE_KEYS": f"{WRITE_KEY} {OTHER_KEY}", "SEGMENT_MOBILE_KEY": "wk_mobile_1"}
    with Deployment(tmp_path_factory.mktemp("segment"), APP, settings={"log": {"level": "debug"}},
                    env=env) as running:
        running.start("gateway")
        yield running


def events(deployment: Deployment, *args: str) -> list[dict[str, Any]]:
    """The stored events (``core events list --json``), newest first."""
    found = json.loads(deployment.core("events", "list", "--json", "--limit", "100000", *args))
    return list(found["events"] if isinstance(found, dict) else found)
