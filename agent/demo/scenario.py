"""The demo's village: six cameras on three scenes, with people and vehicles crossing, a light switch, and one
camera whose infra-red night mode switches on and off.

Three scenes, not six: the simulator encodes each scene once (and caches it on disk), so a first demo on a Pi
starts in about a minute instead of several. Cameras sharing a scene run at different phases, so their crossings
do not all happen at the same moment. Pure: this module builds a `Scenario` and touches nothing.
"""

from __future__ import annotations

from typing import Any

from agent.simulator.scenario import Scenario, parse_scenario

LOOP_S = 30.0  # every scene repeats after this long: a crossing every ~15 s per camera keeps the console busy
KEYFRAME_S = 2.0  # a cheap camera's usual GOP; LOOP_S must be a multiple of it (checked by the simulator)
USERNAME = "admin"
PASSWORD = "matthan123"  # the simulator's cameras only; printed by the demo on purpose

# (camera name, scene, phase_s). Names are what a commune would call its cameras (without accents: topic-safe).
CAMERAS: tuple[tuple[str, str, float], ...] = (
    ("cong-lang", "street", 0.0),  # the village gate
    ("san-dinh", "yard", 0.0),  # the communal house yard: the one with the IR night switch
    ("cho", "market", 0.0),  # the market
    ("nga-ba", "street", 10.0),  # the crossroads
    ("truong-hoc", "market", 15.0),  # the school gate
    ("tram-y-te", "street", 20.0),  # the health station
)

# Crossings are at least 6 s apart (more than the agent's default 5 s event gap), so each one is an event of its own;
# the light and IR changes come when nothing moves, so any event during them would be a false alarm.
SCENES: dict[str, dict[str, Any]] = {
    "street": {
        "loop_s": LOOP_S, "seed": 11,
        "actors": [
            {"name": "walker", "kind": "person", "start_s": 1, "duration_s": 6, "y": 0.8, "direction": "ltr"},
            {"name": "motorbike", "kind": "vehicle", "start_s": 14, "duration_s": 4, "y": 0.92, "direction": "rtl"},
        ],
        # The street light comes on (and goes off again before the loop ends): a whole-image change, not motion.
        "events": [{"kind": "light_step", "start_s": 24, "end_s": 29, "gain": 1.6}],
    },
    "market": {
        "loop_s": LOOP_S, "seed": 23,
        "actors": [
            {"name": "truck", "kind": "vehicle", "start_s": 1, "duration_s": 4, "y": 0.95, "direction": "ltr"},
            {"name": "shopper", "kind": "person", "start_s": 12, "duration_s": 7, "y": 0.78, "direction": "rtl"},
        ],
        # The stall lights go off for a moment.
        "events": [{"kind": "light_step", "start_s": 25, "end_s": 29, "gain": 0.6}],
    },
    "yard": {
        "loop_s": LOOP_S, "seed": 37,
        "actors": [
            {"name": "guard", "kind": "person", "start_s": 15, "duration_s": 7, "y": 0.82, "direction": "ltr"},
        ],
        # Dusk: the camera switches to infra-red (grey picture, more noise) and back: not motion either.
        "events": [{"kind": "ir_night", "start_s": 2, "end_s": 10}],
    },
}


def camera_names(count: int) -> list[str]:
    """The demo's camera names: the six above, then cam07, cam08, ... (on the street scene)."""
    named = [name for name, _, _ in CAMERAS[:count]]
    return named + [f"cam{i + 1:02d}" for i in range(len(named), count)]


def demo_scenario(count: int = len(CAMERAS)) -> Scenario:
    """`count` cameras (1..64): the named six first, then more street cameras at staggered phases."""
    if not 1 <= count <= 64:
        raise ValueError(f"the demo runs 1 to 64 cameras, not {count}")
    cams: list[dict[str, Any]] = []
    for i, name in enumerate(camera_names(count)):
        scene, phase = (CAMERAS[i][1], CAMERAS[i][2]) if i < len(CAMERAS) else ("street", (i * 7.0) % LOOP_S)
        cams.append({"name": name, "scene": scene, "phase_s": phase, "location": f"demo village: {name}"})
    data = {
        "defaults": {"fps": 15, "keyframe_s": KEYFRAME_S, "username": USERNAME, "password": PASSWORD},
        "scenes": SCENES,
        "cameras": cams,
    }
    return parse_scenario(data)
