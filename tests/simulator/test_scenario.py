"""Scenario files: parsed strictly, with errors that say where and what."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.simulator.scenario import (
    DEFAULT_SCENE,
    ScenarioError,
    check_fault_args,
    default_scenario,
    load_scenario,
    parse_scenario,
)


def test_scenario_default_has_requested_cameras() -> None:
    """--cameras N without a file gives N uniquely named default cameras on the street scene."""
    sc = default_scenario(3)
    assert [c.name for c in sc.cameras] == ["cam01", "cam02", "cam03"]
    assert sc.scenes["street"] == DEFAULT_SCENE


def test_scenario_yaml_file_is_loaded(tmp_path: Path) -> None:
    """A YAML scenario with defaults, a scene, quirks and a scheduled fault is read as written."""
    path = tmp_path / "s.yaml"
    path.write_text(
        "defaults: {fps: 10, password: pw}\n"
        "scenes:\n  night:\n    loop_s: 10\n    actors: [{name: a, kind: vehicle, start_s: 1, duration_s: 3}]\n"
        "    events: [{kind: ir_night, start_s: 5, end_s: 8}]\n"
        "cameras:\n  - {name: gate, scene: night, quirks: [no_hello, wrong_host]}\n"
        "faults:\n  - {camera: gate, fault: freeze, at_s: 3, duration_s: 2}\n"
    )
    sc = load_scenario(path)
    cam = sc.camera("gate")
    assert cam.fps == 10 and cam.password == "pw" and cam.quirks == {"no_hello", "wrong_host"}
    assert sc.scenes["night"].events[0].kind == "ir_night"
    assert sc.faults[0].fault == "freeze" and sc.faults[0].duration_s == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cameras": [{"name": "a", "quirks": ["bogus"]}]}, "unknown quirk 'bogus'"),
        ({"cameras": [{"name": "a"}], "faults": [{"camera": "b", "fault": "freeze"}]}, "unknown camera 'b'"),
        ({"cameras": [{"name": "a"}], "faults": [{"camera": "a", "fault": "explode"}]}, "unknown fault 'explode'"),
        ({"cameras": [{"name": "a", "colour": "red"}]}, "unknown key(s) colour"),
        ({"cameras": [{"name": "a", "scene": "moon"}]}, "unknown scene 'moon'"),
        ({"scenes": {"s": {"actors": [{"start_s": 18, "duration_s": 5}]}}, "cameras": [{"scene": "s"}]},
         "passes the loop end"),
        ({"cameras": [{"name": "a", "keyframe_s": 3}]}, "multiple of keyframe_s"),
        ({"cameras": [{"name": "a"}, {"name": "a"}]}, "duplicate camera name"),
        ({"cameras": "a"}, "expected a list"),
    ],
)
def test_scenario_malformed_is_refused_with_reason(data: dict, message: str) -> None:
    """Each kind of mistake gets a ScenarioError naming it."""
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data)
    assert message in str(err.value)


def test_scenario_bad_yaml_names_the_file(tmp_path: Path) -> None:
    """A file that is not YAML is refused with its path in the message."""
    path = tmp_path / "bad.yaml"
    path.write_text("cameras: [unclosed\n")
    with pytest.raises(ScenarioError, match=r"bad\.yaml: not valid YAML"):
        load_scenario(path)


def test_scenario_fault_args_are_checked() -> None:
    """A fault argument the fault does not take is refused before anything happens."""
    with pytest.raises(ScenarioError, match="unknown key"):
        check_fault_args("x", "freeze", {"down_s": 1})
    check_fault_args("x", "reboot", {"down_s": 1})
