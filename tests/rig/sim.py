"""Start a simulated camera cluster for a test, and always close it.

Skips only where this machine cannot run the simulator (GStreamer's RTSP server missing); any other failure to
start is a test failure, not a skip, so a broken simulator can never pass for an unsupported machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import pytest


@contextlib.contextmanager
def running_cluster(scenario: Mapping[str, Any] | Any, *, lan: Any = None) -> Iterator[Any]:
    """A started `Cluster` for `scenario` (a dict or a parsed Scenario): in `lan`, else in loopback mode."""
    from agent.simulator import parse_scenario
    from agent.simulator.cluster import Cluster
    from agent.simulator.rtsp import rtsp_unavailable_reason

    reason = rtsp_unavailable_reason()
    if reason:
        pytest.skip(reason)
    parsed = parse_scenario(dict(scenario)) if isinstance(scenario, Mapping) else scenario
    cluster = Cluster(parsed, lan=lan, loopback=lan is None).start()  # start() closes what it began if it fails
    try:
        yield cluster
    finally:
        cluster.close()
