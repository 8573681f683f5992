"""The end-to-end site: one simulated village shared by the tests of a module (starting one costs ~20 s)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.rig import Site, running_site

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
    with running_site(Path(tmp_path_factory.mktemp("site")), SCENARIO) as s:
        yield s
