"""The end-to-end site: one simulated village shared by the tests of a module (starting one costs ~20 s)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.simulator.netns import Lan, netns_unavailable_reason
from tests.e2e.rig import Site

SCENARIO = {
    "defaults": {"fps": 15, "keyframe_s": 2, "sub": [640, 360], "main": [960, 540]},
    "scenes": {
        # one person crossing per 20 s loop
        "street": {"loop_s": 20, "seed": 3, "actors": [
            {"name": "walker", "kind": "person", "start_s": 3, "duration_s": 7, "y": 0.8}]},
        # a crossing, then the street lights switch on and off again: no event for the light
        "lights": {"loop_s": 20, "seed": 5, "actors": [
            {"name": "cyclist", "kind": "person", "start_s": 1, "duration_s": 5, "y": 0.7}],
            "events": [{"kind": "light_step", "start_s": 12, "end_s": 16, "gain": 1.5}]},
        # a vehicle, then the camera switches to infra-red night mode and back: no event for the switch
        "night": {"loop_s": 20, "seed": 9, "actors": [
            {"name": "moto", "kind": "vehicle", "start_s": 2, "duration_s": 5, "y": 0.75}],
            "events": [{"kind": "ir_night", "start_s": 13, "end_s": 17}]},
    },
    "cameras": [
        {"name": "cho", "scene": "street"},
        {"name": "nga-ba", "scene": "lights"},
        {"name": "cong-lang", "scene": "night"},
        # reset by a villager: its password is not one the agent knows
        {"name": "dinh-lang", "scene": "street", "password": "mat-khau-moi-9"},
    ],
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Cameras in one namespace; broker, station and `matthan-agent run` in the other; all stopped at the end."""
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    from agent.simulator import parse_scenario
    from agent.simulator.cluster import Cluster
    from agent.simulator.rtsp import rtsp_unavailable_reason

    rtsp_reason = rtsp_unavailable_reason()
    if rtsp_reason:
        pytest.skip(rtsp_reason)
    workdir = Path(tmp_path_factory.mktemp("site"))
    with Lan() as lan:
        s = Site(lan, workdir)
        try:
            s.cluster = Cluster(parse_scenario(SCENARIO), lan=lan).start()
            s.start_broker()
            s.start_station()
            s.write_config()
            s.start_agent()
            yield s
        finally:
            s.close()
