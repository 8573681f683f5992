"""Render a looping scene as numpy frames, and say exactly what happens in it (the ground truth).

Everything is periodic in the loop length: actors enter and leave inside the loop, light and IR changes revert
before it ends, drift and sway have periods that divide it, and sensor noise is independent per frame anyway. So
frame N-1 followed by frame 0 looks like any other pair of frames: the seam adds no false motion, and the ground
truth repeats every loop (an actor crossing at loop time 3-9 s crosses again at 23-29 s, 43-49 s, ...).

Rendering is pure: `render_frame(ctx, i)` depends only on the scene, the size, the fps and the frame index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from agent.simulator.scenario import Actor, SceneSpec

OSD_DATE = "2026-01-01"  # the on-screen clock shows loop time on this date, like a camera that never got NTP
NOISE_BANK = 8  # noise fields precomputed and cropped at random offsets: per-frame noise at a fraction of the cost
IR_NOISE_FACTOR = 2.5  # night mode: the sensor's gain goes up, so does its noise
IR_CONTRAST = 1.35


class ClipReader:
    """Frames of a real clip at the scene's fps and size, read in order (render_frame asks for 0, 1, 2, ...)."""

    def __init__(self, path: str, start_s: float, fps: int, width: int, height: int) -> None:
        import av

        self.path, self.start_s, self.fps, self.size = path, start_s, fps, (width, height)
        self._av = av
        self._container: Any = None
        self._frames: Any = None
        self._next = 0
        self._current: np.ndarray | None = None
        self._current_t = -1.0

    def _restart(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = self._av.open(self.path)
        stream = self._container.streams.video[0]
        self._frames = self._container.decode(stream)
        self._next = 0
        self._current, self._current_t = None, -1.0

    def frame(self, i: int) -> np.ndarray:
        """The clip frame shown at scene time i / fps (the latest frame not after it), as float32 BGR."""
        if self._frames is None or i < self._next:
            self._restart()
        want = self.start_s + i / self.fps
        for frame in self._frames:
            t = float(frame.time or 0.0)
            if self._current is None or t <= want + 1e-6:
                self._current = frame.to_ndarray(format="bgr24")
                self._current_t = t
            if t >= want - 1e-6:
                break
        if self._current is None:
            raise ValueError(f"{self.path}: no video frames at {want:.2f} s")
        self._next = i + 1
        return cv2.resize(self._current, self.size, interpolation=cv2.INTER_AREA).astype(np.float32)


@dataclass
class RenderContext:
    scene: SceneSpec
    width: int
    height: int
    fps: int
    frames: int
    background: np.ndarray  # float32 BGR
    noise: list[np.ndarray]  # int16 noise fields with a margin for random crops
    rng: np.random.Generator
    clip: ClipReader | None = None


def frame_count(scene: SceneSpec, fps: int) -> int:
    return round(scene.loop_s * fps)


def _texture(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    small = rng.standard_normal((max(2, int(h / scale)), max(2, int(w / scale)))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def make_background(scene: SceneSpec, width: int, height: int) -> np.ndarray:
    """A village street: sky, houses with windows, a road, a tree; textured like a real sensor sees it."""
    rng = np.random.default_rng(scene.seed)
    h, w = height, width
    img = np.zeros((h, w, 3), np.float32)
    horizon = int(h * 0.45)
    img[:horizon] = (200, 170, 140)  # sky (BGR)
    img[horizon:] = (95, 110, 120)  # ground
    img[int(h * 0.72):] = (80, 85, 88)  # road
    rel = width / 640.0
    for _ in range(5):
        x0 = int(rng.uniform(0, 0.85) * w)
        bw = int(rng.uniform(0.1, 0.2) * w)
        top = int(horizon - rng.uniform(0.1, 0.3) * h)
        colour = rng.uniform(70, 190, 3)
        img[top:horizon, x0:x0 + bw] = colour
        for wy in range(top + int(8 * rel), horizon - int(12 * rel), int(22 * rel)):
            for wx in range(x0 + int(6 * rel), x0 + bw - int(12 * rel), int(24 * rel)):
                img[wy:wy + int(10 * rel), wx:wx + int(10 * rel)] = colour * 0.4
    # lane markings
    for x in range(0, w, int(60 * rel)):
        img[int(h * 0.86):int(h * 0.87) + 1, x:x + int(30 * rel)] = (200, 200, 200)
    tex = _texture(rng, h, w, 3.0 * rel) * 10 + _texture(rng, h, w, 25.0 * rel) * 14
    img += tex[..., None]
    return img


def make_context(scene: SceneSpec, width: int, height: int, fps: int) -> RenderContext:
    rng = np.random.default_rng(scene.seed * 7919 + width)
    noise = [rng.normal(0.0, 1.0, (height + 16, width + 16)).astype(np.float32) for _ in range(NOISE_BANK)]
    clip = ClipReader(scene.clip, scene.clip_start_s, fps, width, height) if scene.clip else None
    background = clip.frame(0) if clip else make_background(scene, width, height)
    return RenderContext(scene, width, height, fps, frame_count(scene, fps), background, noise, rng, clip)


# -- what is where at time t (pure) -------------------------------------------------------------------------
def actor_box(actor: Actor, t: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The actor's bounding box (x, y, w, h) at loop time t, or None when it is not in the frame."""
    if not actor.start_s <= t < actor.start_s + actor.duration_s:
        return None
    if actor.kind == "person":
        bw, bh = max(6, int(0.035 * width)), max(16, int(0.2 * height))
    else:
        bw, bh = max(24, int(0.17 * width)), max(10, int(0.1 * height))
    frac = (t - actor.start_s) / actor.duration_s
    x = -bw + frac * (width + bw)
    if actor.direction == "rtl":
        x = width - bw - x
    y = int(actor.y * height) - bh
    return round(x), y, bw, bh


def light_gain(scene: SceneSpec, t: float) -> float:
    gain = 1.0
    for ev in scene.events:
        if ev.kind == "light_step" and ev.start_s <= t < ev.end_s:
            gain *= ev.gain
        elif ev.kind == "exposure_drift":
            gain *= 1.0 + ev.amplitude * math.sin(2 * math.pi * t / ev.period_s)
    return gain


def ir_active(scene: SceneSpec, t: float) -> bool:
    return any(ev.kind == "ir_night" and ev.start_s <= t < ev.end_s for ev in scene.events)


def osd_text(t: float) -> str:
    s = int(t)
    return f"{OSD_DATE} {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


# -- drawing ------------------------------------------------------------------------------------------------
def _draw_actor(img: np.ndarray, actor: Actor, box: tuple[int, int, int, int]) -> None:
    x, y, bw, bh = box
    if actor.kind == "person":
        head = max(3, bw // 2)
        cv2.rectangle(img, (x, y + head * 2), (x + bw, y + bh), (60, 40, 150), -1)  # shirt and trousers
        cv2.rectangle(img, (x, y + int(bh * 0.6)), (x + bw, y + bh), (50, 45, 40), -1)
        cv2.circle(img, (x + bw // 2, y + head), head, (90, 130, 180), -1)
    else:
        cv2.rectangle(img, (x, y), (x + bw, y + int(bh * 0.8)), (40, 60, 190), -1)  # body
        cv2.rectangle(img, (x + bw // 5, y + 2), (x + bw // 2, y + bh // 3), (200, 190, 150), -1)  # window
        r = max(2, bh // 5)
        for cx in (x + bw // 5, x + 4 * bw // 5):
            cv2.circle(img, (cx, y + int(bh * 0.8)), r, (20, 20, 20), -1)


def _sway(img: np.ndarray, scene: SceneSpec, t: float, ctx: RenderContext) -> None:
    for ev in scene.events:
        if ev.kind != "sway":
            continue
        rx, ry, rw, rh = ev.region
        x0, y0 = int(rx * ctx.width), int(ry * ctx.height)
        x1, y1 = x0 + max(4, int(rw * ctx.width)), y0 + max(4, int(rh * ctx.height))
        dx = ev.amplitude * ctx.width * math.sin(2 * math.pi * t / ev.period_s)
        patch = ctx.background[y0:y1, x0:x1]
        # A leafy blob: the textured patch, darkened green, shifted sideways by the wind.
        leaves = patch * (0.5, 0.9, 0.55) + 10 * _leaf_texture(ctx, y1 - y0, x1 - x0)[..., None]
        m = np.float32([[1, 0, dx], [0, 1, 0]])
        img[y0:y1, x0:x1] = cv2.warpAffine(leaves, m, (x1 - x0, y1 - y0), borderMode=cv2.BORDER_REFLECT)


_LEAVES: dict[tuple[int, int, int], np.ndarray] = {}


def _leaf_texture(ctx: RenderContext, h: int, w: int) -> np.ndarray:
    key = (ctx.scene.seed, h, w)
    if key not in _LEAVES:
        _LEAVES[key] = _texture(np.random.default_rng(ctx.scene.seed + 99), h, w, 2.0)
    return _LEAVES[key]


def render_frame(ctx: RenderContext, i: int) -> np.ndarray:
    """Frame i of the loop as uint8 BGR."""
    scene = ctx.scene
    t = i / ctx.fps
    img = ctx.clip.frame(i) if ctx.clip is not None else ctx.background.copy()
    _sway(img, scene, t, ctx)
    for actor in scene.actors:
        box = actor_box(actor, t, ctx.width, ctx.height)
        if box is not None:
            _draw_actor(img, actor, box)
    img *= light_gain(scene, t)
    sigma = scene.noise
    if ir_active(scene, t):
        grey = img @ np.float32([0.114, 0.587, 0.299])
        grey = (grey - grey.mean()) * IR_CONTRAST + grey.mean()
        img = np.repeat(grey[..., None], 3, axis=2)
        sigma *= IR_NOISE_FACTOR
    if sigma > 0:
        field = ctx.noise[i % NOISE_BANK]
        oy, ox = (int(v) for v in ctx.rng.integers(0, 16, 2))
        img += field[oy:oy + ctx.height, ox:ox + ctx.width, None] * sigma
    out = np.clip(img, 0, 255).astype(np.uint8)
    scale = ctx.height / 360.0
    org = (int(10 * scale), int(24 * scale))
    text = osd_text(t)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (0, 0, 0), max(1, int(4 * scale)))
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (255, 255, 255), max(1, int(1.5 * scale)))
    return out


# -- ground truth -------------------------------------------------------------------------------------------
def ground_truth(scene: SceneSpec, fps: int, keyframe_s: float) -> dict[str, Any]:
    """What the loop contains, in loop seconds. Repeats every loop_s; see module docstring."""
    return {
        "version": 1,
        "scene": scene.name,
        "loop_s": scene.loop_s,
        "fps": fps,
        "frames": frame_count(scene, fps),
        "keyframe_s": keyframe_s,
        "periodic": True,
        "clock": "loop time t is shown at wall time anchor + phase_s + k * loop_s + t for every whole k",
        "osd": {"region": [0.0, 0.0, 0.45, 0.1], "changes": "every second"},
        # A real clip's own motion is not known, and its loop seam is a cut unless the clip itself loops.
        "clip": {"path": scene.clip, "start_s": scene.clip_start_s, "own_motion_unknown": True} if scene.clip else None,
        "actors": [
            {"name": a.name, "kind": a.kind, "direction": a.direction, "y": a.y,
             "visible": [a.start_s, a.start_s + a.duration_s], "moving": [a.start_s, a.start_s + a.duration_s]}
            for a in scene.actors
        ],
        "events": [
            {"kind": e.kind, "start_s": e.start_s, "end_s": e.end_s,
             **({"gain": e.gain} if e.kind == "light_step" else {}),
             **({"period_s": e.period_s, "amplitude": e.amplitude} if e.kind in ("exposure_drift", "sway") else {}),
             **({"region": list(e.region)} if e.kind == "sway" else {})}
            for e in scene.events
        ],
    }


def moving_at(scene: SceneSpec, t: float) -> bool:
    """True while any actor moves at loop time t (drives the camera's own motion events)."""
    t %= scene.loop_s
    return any(a.start_s <= t < a.start_s + a.duration_s for a in scene.actors)


def wall_intervals(gt: dict[str, Any], anchor: float, since: float, until: float) -> list[dict[str, Any]]:
    """Ground truth unrolled onto the wall clock: every actor crossing and global event overlapping [since, until).

    `anchor` is the camera's CameraInfo.anchor (wall time of loop time 0). Each item: {"kind": "actor" or the
    event kind, "name", "start", "end"} in Unix seconds. Drift and sway last the whole loop and are left out.
    """
    loop = float(gt["loop_s"])
    items = [("actor", a["name"], *a["moving"]) for a in gt["actors"]]
    items += [(e["kind"], e["kind"], e["start_s"], e["end_s"]) for e in gt["events"]
              if e["kind"] in ("light_step", "ir_night")]
    out = []
    first = math.floor((since - anchor) / loop) - 1
    last = math.floor((until - anchor) / loop) + 1
    for k in range(first, last + 1):
        base = anchor + k * loop
        for kind, name, start, end in items:
            s, e = base + start, base + end
            if e > since and s < until:
                out.append({"kind": kind, "name": name, "start": s, "end": e})
    return sorted(out, key=lambda i: i["start"])
