"""Simulated ONVIF/RTSP camera clusters for tests, the demo and benchmarks. Never imported by the agent at run time.

Public surface:
    Cluster(scenario, lan=Lan | loopback=True) -> start()/close(), info(name) -> CameraInfo, inject(), clear()
    load_scenario(path), parse_scenario(dict), default_scenario(n), ScenarioError, ControlError
    QUIRKS, FAULTS, STATE_FAULTS, ACTION_FAULTS
See docs/simulator.md.
"""

from __future__ import annotations

from agent.simulator.scenario import (
    ACTION_FAULTS,
    FAULTS,
    QUIRKS,
    STATE_FAULTS,
    Scenario,
    ScenarioError,
    default_scenario,
    load_scenario,
    parse_scenario,
)

__all__ = [
    "ACTION_FAULTS",
    "FAULTS",
    "QUIRKS",
    "STATE_FAULTS",
    "CameraInfo",
    "Cluster",
    "ControlError",
    "Scenario",
    "ScenarioError",
    "default_scenario",
    "load_scenario",
    "parse_scenario",
]


def __getattr__(name: str) -> object:
    # Cluster pulls in aiohttp, numpy and OpenCV; import it only when asked for.
    if name in ("Cluster", "CameraInfo", "ControlError"):
        from agent.simulator import cluster

        return getattr(cluster, name)
    raise AttributeError(name)
