"""The demo village: six named cameras, people and vehicles crossing, light switches, one IR night camera."""

from __future__ import annotations

import pytest

from agent.demo.scenario import camera_names, demo_scenario


def test_scenario_default_has_six_cameras_with_crossings_and_light_changes() -> None:
    """Six cameras; every scene has a person crossing; light steps and exactly one IR camera."""
    sc = demo_scenario()
    assert [c.name for c in sc.cameras] == camera_names(6)
    scenes = {c.scene for c in sc.cameras}
    for name in scenes:
        assert any(a.kind == "person" for a in sc.scenes[name].actors), name
    kinds = [(c.name, e.kind) for c in sc.cameras for e in sc.scenes[c.scene].events]
    assert sum(1 for _, k in kinds if k == "ir_night") == 1
    assert any(k == "light_step" for _, k in kinds)
    assert any(a.kind == "vehicle" for s in scenes for a in sc.scenes[s].actors)


def test_scenario_more_cameras_are_numbered_street_cameras() -> None:
    """Beyond the six named cameras come cam07, cam08... on the street scene."""
    sc = demo_scenario(8)
    assert [c.name for c in sc.cameras][6:] == ["cam07", "cam08"]
    assert {c.scene for c in sc.cameras[6:]} == {"street"}


def test_scenario_refuses_zero_cameras() -> None:
    """--cameras 0 is a usage error, said plainly."""
    with pytest.raises(ValueError, match="1 to 64"):
        demo_scenario(0)
