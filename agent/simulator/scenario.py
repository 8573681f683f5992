"""Scenario files for the camera simulator: what each simulated camera shows, how it misbehaves, and when it fails.

A scenario is YAML or JSON:

    defaults:                       # optional; every camera starts from these
      fps: 15
      keyframe_s: 2                 # IDR interval; the loop length must be a multiple of it
      sub: [640, 360]
      main: [1280, 720]
      username: admin
      password: matthan123
      scene: street
    scenes:
      street:
        loop_s: 20                  # the scene repeats every loop_s seconds; ground truth is periodic
        seed: 7
        actors:
          - {name: walker, kind: person, start_s: 3, duration_s: 6, y: 0.75, direction: ltr}
        events:
          - {kind: light_step, start_s: 12, end_s: 16, gain: 1.5}
    cameras:
      - {name: cong-lang, quirks: [wrong_host], clock_skew_s: 120}
    faults:
      - {camera: cong-lang, fault: freeze, at_s: 30, duration_s: 10}

Every key is checked: an unknown key, camera, quirk or fault is refused with a message naming where it is.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ACTOR_KINDS = ("person", "vehicle")
EVENT_KINDS = ("light_step", "ir_night", "exposure_drift", "sway")
QUIRKS = (
    "wrong_host",  # XAddrs and stream URIs name 127.0.0.1 (many cheap firmwares read the address too early)
    "no_probe_matches_wrapper",  # ProbeMatch directly in the Body
    "unescaped_scope_space",  # "onvif://www.onvif.org/name/Cong Lang" with a raw space
    "duplicate_probe_match",  # every probe answered twice
    "no_hello",  # never announces itself
    "no_pullpoint",  # CreatePullPointSubscription is refused
    "h265_main",  # main stream is H.265 only
)
# State faults stay until cleared; action faults happen once.
STATE_FAULTS = ("rtsp_refuse", "rtsp_stall", "freeze", "gone")
ACTION_FAULTS = ("reboot", "new_ip", "password_change")
FAULTS = STATE_FAULTS + ACTION_FAULTS
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")


class ScenarioError(ValueError):
    """The scenario (file or call) is malformed; the message says where and what to change."""


@dataclass(frozen=True)
class Actor:
    name: str
    kind: str  # person | vehicle
    start_s: float  # enters the frame
    duration_s: float  # time from entering at one edge to leaving at the other
    y: float = 0.75  # vertical position of the actor's feet, relative to the frame height
    direction: str = "ltr"  # ltr | rtl


@dataclass(frozen=True)
class GlobalEvent:
    kind: str
    start_s: float = 0.0
    end_s: float = 0.0  # light_step and ir_night revert at end_s; drift and sway last the whole loop
    gain: float = 1.5  # light_step brightness factor
    amplitude: float = 0.1  # exposure_drift relative amplitude; sway amplitude in relative width
    period_s: float = 0.0  # exposure_drift / sway period; must divide the loop (0 = whole loop)
    region: tuple[float, float, float, float] = (0.7, 0.2, 0.2, 0.4)  # sway: x, y, w, h relative


@dataclass(frozen=True)
class SceneSpec:
    name: str = "street"
    loop_s: float = 20.0
    seed: int = 1
    noise: float = 3.0  # sensor noise sigma in grey levels
    actors: tuple[Actor, ...] = ()
    events: tuple[GlobalEvent, ...] = ()
    clip: str = ""  # a real video file replaces the rendered street; actors, events and the OSD are drawn over it
    clip_start_s: float = 0.0


@dataclass(frozen=True)
class CameraSpec:
    name: str
    scene: str = "street"
    fps: int = 15
    keyframe_s: float = 2.0
    sub: tuple[int, int] = (640, 360)
    main: tuple[int, int] = (1280, 720)
    username: str = "admin"
    password: str = "matthan123"
    manufacturer: str = "Matthan Sim"
    model: str = "SIM-IPC-2MP"
    hardware: str = "SIM-IPC-2MP"
    location: str = "village"
    firmware: str = "V5.5.0 build 200101"
    clock_skew_s: float = 0.0
    phase_s: float = 0.0  # this camera's scene runs this many seconds ahead of the cluster anchor
    quirks: frozenset[str] = frozenset()
    rtsp_paths: tuple[str, str] = ("/Streaming/Channels/101", "/Streaming/Channels/102")  # main, sub


@dataclass(frozen=True)
class FaultSpec:
    camera: str
    fault: str
    at_s: float  # seconds after the cluster starts
    duration_s: float | None = None  # state faults: cleared after this long; None = until cleared
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    cameras: tuple[CameraSpec, ...]
    scenes: Mapping[str, SceneSpec]
    faults: tuple[FaultSpec, ...] = ()

    def camera(self, name: str) -> CameraSpec:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise ScenarioError(f"unknown camera {name!r}; cameras are: {', '.join(c.name for c in self.cameras)}")


DEFAULT_SCENE = SceneSpec(
    name="street",
    actors=(
        Actor("walker", "person", start_s=3.0, duration_s=6.0, y=0.8, direction="ltr"),
        Actor("motorbike", "vehicle", start_s=11.0, duration_s=4.0, y=0.9, direction="rtl"),
    ),
)


# -- parsing helpers ---------------------------------------------------------------------------------------------
def _check_keys(where: str, data: Any, allowed: Sequence[str]) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(allowed)}")
    return dict(data)


def _num(where: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScenarioError(f"{where}: expected a number, got {value!r}")
    if not lo <= value <= hi:
        raise ScenarioError(f"{where}: {value} is outside {lo}..{hi}")
    return float(value)


def _size(where: str, value: Any) -> tuple[int, int]:
    if not (isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, int) for v in value)):
        raise ScenarioError(f"{where}: expected [width, height], got {value!r}")
    w, h = int(value[0]), int(value[1])
    if not (64 <= w <= 3840 and 64 <= h <= 2160 and w % 2 == 0 and h % 2 == 0):
        raise ScenarioError(f"{where}: {w}x{h} must be even and between 64x64 and 3840x2160")
    return (w, h)


def _name(where: str, value: Any) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ScenarioError(f"{where}: name {value!r} must be 1-48 letters, digits, '_', '.' or '-'")
    return value


def _divides(loop_s: float, period: float) -> bool:
    ratio = loop_s / period
    return abs(ratio - round(ratio)) < 1e-6


def parse_actor(where: str, data: Any, loop_s: float) -> Actor:
    d = _check_keys(where, data, ("name", "kind", "start_s", "duration_s", "y", "direction"))
    name = _name(f"{where}.name", d.get("name", "actor"))
    kind = d.get("kind", "person")
    if kind not in ACTOR_KINDS:
        raise ScenarioError(f"{where}.kind: {kind!r} is not one of {', '.join(ACTOR_KINDS)}")
    start = _num(f"{where}.start_s", d.get("start_s", 0.0), 0.0, loop_s)
    dur = _num(f"{where}.duration_s", d.get("duration_s", 5.0), 0.5, loop_s)
    if start + dur > loop_s:
        raise ScenarioError(f"{where}: start_s + duration_s = {start + dur} passes the loop end {loop_s}; "
                            "an actor must leave before the loop restarts, or the seam would show a jump")
    direction = d.get("direction", "ltr")
    if direction not in ("ltr", "rtl"):
        raise ScenarioError(f"{where}.direction: {direction!r} must be ltr or rtl")
    return Actor(name, kind, start, dur, _num(f"{where}.y", d.get("y", 0.75), 0.3, 1.0), direction)


def parse_event(where: str, data: Any, loop_s: float) -> GlobalEvent:
    d = _check_keys(where, data, ("kind", "start_s", "end_s", "gain", "amplitude", "period_s", "region"))
    kind = d.get("kind")
    if kind not in EVENT_KINDS:
        raise ScenarioError(f"{where}.kind: {kind!r} is not one of {', '.join(EVENT_KINDS)}")
    ev = GlobalEvent(kind=kind)
    if kind in ("light_step", "ir_night"):
        start = _num(f"{where}.start_s", d.get("start_s", 0.0), 0.0, loop_s)
        end = _num(f"{where}.end_s", d.get("end_s", loop_s), start, loop_s)
        ev = replace(ev, start_s=start, end_s=end, gain=_num(f"{where}.gain", d.get("gain", 1.5), 0.1, 4.0))
    else:
        period = _num(f"{where}.period_s", d.get("period_s", loop_s if kind == "exposure_drift" else 2.0),
                      0.2, loop_s)
        if not _divides(loop_s, period):
            raise ScenarioError(f"{where}.period_s: {period} must divide the loop ({loop_s} s) so the seam is smooth")
        default_amp = 0.1 if kind == "exposure_drift" else 0.01
        ev = replace(ev, start_s=0.0, end_s=loop_s, period_s=period,
                     amplitude=_num(f"{where}.amplitude", d.get("amplitude", default_amp), 0.0, 0.5))
        if "region" in d:
            r = d["region"]
            if not (isinstance(r, Sequence) and len(r) == 4):
                raise ScenarioError(f"{where}.region: expected [x, y, w, h] relative, got {r!r}")
            vals = tuple(_num(f"{where}.region", v, 0.0, 1.0) for v in r)
            if vals[0] + vals[2] > 1.0 or vals[1] + vals[3] > 1.0 or vals[2] <= 0 or vals[3] <= 0:
                raise ScenarioError(f"{where}.region: {r!r} must lie inside the frame")
            ev = replace(ev, region=vals)  # type: ignore[arg-type]
    return ev


def parse_scene(where: str, name: str, data: Any) -> SceneSpec:
    d = _check_keys(where, data, ("loop_s", "seed", "noise", "actors", "events", "clip", "clip_start_s"))
    loop_s = _num(f"{where}.loop_s", d.get("loop_s", 20.0), 2.0, 600.0)
    actors = d.get("actors", [])
    events = d.get("events", [])
    if not isinstance(actors, list) or not isinstance(events, list):
        raise ScenarioError(f"{where}: actors and events must be lists")
    seed = d.get("seed", 1)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ScenarioError(f"{where}.seed: expected an integer, got {seed!r}")
    clip = d.get("clip", "")
    if clip:
        if not isinstance(clip, str) or not Path(clip).is_file():
            raise ScenarioError(f"{where}.clip: {clip!r} is not a readable video file")
        clip = str(Path(clip).resolve())
    return SceneSpec(
        name=name, loop_s=loop_s, seed=seed, noise=_num(f"{where}.noise", d.get("noise", 3.0), 0.0, 40.0),
        clip=clip, clip_start_s=_num(f"{where}.clip_start_s", d.get("clip_start_s", 0.0), 0.0, 1e6),
        actors=tuple(parse_actor(f"{where}.actors[{i}]", a, loop_s) for i, a in enumerate(actors)),
        events=tuple(parse_event(f"{where}.events[{i}]", e, loop_s) for i, e in enumerate(events)),
    )


CAMERA_KEYS = ("name", "scene", "fps", "keyframe_s", "sub", "main", "username", "password", "manufacturer", "model",
               "hardware", "location", "firmware", "clock_skew_s", "phase_s", "quirks", "rtsp_paths")


def parse_camera(where: str, data: Any, base: CameraSpec) -> CameraSpec:
    d = _check_keys(where, data, CAMERA_KEYS)
    cam = base
    if "name" in d:
        cam = replace(cam, name=_name(f"{where}.name", d["name"]))
    for key in ("scene", "username", "password", "manufacturer", "model", "hardware", "location", "firmware"):
        if key in d:
            if not isinstance(d[key], str) or not d[key]:
                raise ScenarioError(f"{where}.{key}: expected a non-empty string")
            cam = replace(cam, **{key: d[key]})
    if "fps" in d:
        cam = replace(cam, fps=int(_num(f"{where}.fps", d["fps"], 1, 60)))
    if "keyframe_s" in d:
        cam = replace(cam, keyframe_s=_num(f"{where}.keyframe_s", d["keyframe_s"], 0.1, 20.0))
    for key in ("sub", "main"):
        if key in d:
            cam = replace(cam, **{key: _size(f"{where}.{key}", d[key])})
    if "clock_skew_s" in d:
        cam = replace(cam, clock_skew_s=_num(f"{where}.clock_skew_s", d["clock_skew_s"], -1e9, 1e9))
    if "phase_s" in d:
        cam = replace(cam, phase_s=_num(f"{where}.phase_s", d["phase_s"], 0.0, 600.0))
    if "quirks" in d:
        quirks = d["quirks"]
        if not isinstance(quirks, list):
            raise ScenarioError(f"{where}.quirks: expected a list")
        for q in quirks:
            if q not in QUIRKS:
                raise ScenarioError(f"{where}.quirks: unknown quirk {q!r}; known: {', '.join(QUIRKS)}")
        cam = replace(cam, quirks=frozenset(quirks))
    if "rtsp_paths" in d:
        paths = d["rtsp_paths"]
        if not (isinstance(paths, list) and len(paths) == 2 and all(isinstance(p, str) and p.startswith("/")
                                                                     for p in paths) and paths[0] != paths[1]):
            raise ScenarioError(f"{where}.rtsp_paths: expected two different paths [main, sub] starting with '/'")
        cam = replace(cam, rtsp_paths=(paths[0], paths[1]))
    return cam


def parse_fault(where: str, data: Any, names: set[str]) -> FaultSpec:
    d = _check_keys(where, data, ("camera", "fault", "at_s", "duration_s", "args"))
    camera = d.get("camera")
    if camera not in names:
        raise ScenarioError(f"{where}.camera: unknown camera {camera!r}; cameras are: {', '.join(sorted(names))}")
    fault = d.get("fault")
    if fault not in FAULTS:
        raise ScenarioError(f"{where}.fault: unknown fault {fault!r}; known: {', '.join(FAULTS)}")
    duration = d.get("duration_s")
    if duration is not None:
        if fault not in STATE_FAULTS:
            raise ScenarioError(f"{where}.duration_s: {fault} happens once; only {', '.join(STATE_FAULTS)} last")
        duration = _num(f"{where}.duration_s", duration, 0.0, 1e6)
    args = d.get("args", {})
    if not isinstance(args, Mapping):
        raise ScenarioError(f"{where}.args: expected a mapping")
    check_fault_args(where, fault, args)
    return FaultSpec(camera, fault, _num(f"{where}.at_s", d.get("at_s", 0.0), 0.0, 1e6), duration, dict(args))


FAULT_ARGS = {"reboot": ("down_s",), "new_ip": ("ip",), "password_change": ("password",)}


def check_fault_args(where: str, fault: str, args: Mapping[str, Any]) -> None:
    """Refuse arguments a fault does not take, and bad values, before anything happens."""
    if fault not in FAULTS:
        raise ScenarioError(f"{where}: unknown fault {fault!r}; known: {', '.join(FAULTS)}")
    _check_keys(f"{where}.args", args, FAULT_ARGS.get(fault, ()))
    if "down_s" in args:
        _num(f"{where}.args.down_s", args["down_s"], 0.0, 3600.0)
    if "password" in args and (not isinstance(args["password"], str) or not args["password"]):
        raise ScenarioError(f"{where}.args.password: expected a non-empty string")
    if "ip" in args and not isinstance(args["ip"], str):
        raise ScenarioError(f"{where}.args.ip: expected an IPv4 address string")


def check_camera(cam: CameraSpec, scenes: Mapping[str, SceneSpec], where: str) -> None:
    if cam.scene not in scenes:
        raise ScenarioError(f"{where}.scene: unknown scene {cam.scene!r}; scenes are: {', '.join(sorted(scenes))}")
    scene = scenes[cam.scene]
    gop = cam.keyframe_s * cam.fps
    if abs(gop - round(gop)) > 1e-6 or round(gop) < 1:
        raise ScenarioError(f"{where}: keyframe_s * fps = {gop} must be a whole number of frames")
    if not _divides(scene.loop_s, cam.keyframe_s):
        raise ScenarioError(f"{where}: the scene loop ({scene.loop_s} s) must be a multiple of keyframe_s "
                            f"({cam.keyframe_s} s) so the loop restarts on a keyframe")


def parse_scenario(data: Any, *, cameras: int | None = None) -> Scenario:
    """Build a Scenario from parsed YAML/JSON; `cameras` adds default cameras up to that count."""
    if data is None:
        data = {}
    d = _check_keys("scenario", data, ("defaults", "scenes", "cameras", "faults"))
    scenes: dict[str, SceneSpec] = {"street": DEFAULT_SCENE}
    raw_scenes = d.get("scenes", {})
    if not isinstance(raw_scenes, Mapping):
        raise ScenarioError("scenario.scenes: expected a mapping of scene name to scene")
    for name, body in raw_scenes.items():
        scenes[_name(f"scenes.{name}", name)] = parse_scene(f"scenes.{name}", name, body)
    base = parse_camera("defaults", d.get("defaults", {}), CameraSpec(name="cam"))
    raw_cams = d.get("cameras", [])
    if not isinstance(raw_cams, list):
        raise ScenarioError("scenario.cameras: expected a list")
    cams: list[CameraSpec] = []
    for i, body in enumerate(raw_cams):
        cam = parse_camera(f"cameras[{i}]", body, replace(base, name=f"cam{i + 1:02d}"))
        cams.append(cam)
    n = len(cams) if cameras is None else cameras
    if n < len(cams):
        cams = cams[:n]
    while len(cams) < n:
        cams.append(replace(base, name=f"cam{len(cams) + 1:02d}"))
    if not cams:
        raise ScenarioError("scenario: no cameras; list some under `cameras:` or pass --cameras N")
    seen: set[str] = set()
    for i, cam in enumerate(cams):
        if cam.name in seen:
            raise ScenarioError(f"cameras[{i}].name: duplicate camera name {cam.name!r}")
        seen.add(cam.name)
        check_camera(cam, scenes, f"cameras[{i}]")
    raw_faults = d.get("faults", [])
    if not isinstance(raw_faults, list):
        raise ScenarioError("scenario.faults: expected a list")
    faults = tuple(parse_fault(f"faults[{i}]", f, seen) for i, f in enumerate(raw_faults))
    return Scenario(cameras=tuple(cams), scenes=scenes, faults=faults)


def load_scenario(path: str | Path, *, cameras: int | None = None) -> Scenario:
    """Read a YAML or JSON scenario file; errors name the file and the offending key."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{p}: cannot read the scenario file ({exc.strerror})") from exc
    import yaml

    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:  # the message carries the line and column
        raise ScenarioError(f"{p}: not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {exc}") from exc
    try:
        return parse_scenario(data, cameras=cameras)
    except ScenarioError as exc:
        raise ScenarioError(f"{p}: {exc}") from None


def default_scenario(cameras: int) -> Scenario:
    return parse_scenario({}, cameras=cameras)
