"""Encode a scene once to an H.264/H.265 elementary stream, with an access-unit index, snapshots and ground truth.

The RTSP host serves these files in a loop without re-encoding, so 16 cameras cost what pushing packets costs.
Results are cached on disk under a key made of everything that changes the bytes, so tests encode a scene once
per machine: $MATTHAN_SIM_CACHE, else $XDG_CACHE_HOME/matthan-agent/sim, else ~/.cache/matthan-agent/sim.

Files for key K: K.es (Annex B stream), K.json (index: one [offset, size, keyframe] per frame, codec, fps, size),
K.snap (JPEGs concatenated) with their offsets in K.json, K.gt.json (ground truth, see scene.py).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from agent.simulator.scenario import SceneSpec

log = logging.getLogger(__name__)

RENDER_VERSION = 4  # bump when the renderer or encoder settings change, so caches are not reused
SNAPSHOTS_PER_S = 2  # snapshot JPEGs stored per second of loop (the on-screen clock changes every second)
SNAPSHOT_QUALITY = 80
CODECS = {"h264": "libx264", "h265": "libx265"}
# Bitrate caps like a cheap camera's: noise must not turn into megabits.
MAX_KBPS = {"sub": 1000, "main": 3000}


class EncodeUnavailable(RuntimeError):
    """The PyAV wheel here lacks the encoder a scene asks for (libx264, or libx265 for the h265_main quirk)."""


@dataclass(frozen=True)
class EncodedStream:
    key: str
    codec: str  # h264 | h265
    width: int
    height: int
    fps: int
    gop: int
    es_path: Path
    index_path: Path
    snap_path: Path
    gt_path: Path

    def index(self) -> dict[str, Any]:
        return json.loads(self.index_path.read_text())

    def ground_truth(self) -> dict[str, Any]:
        return json.loads(self.gt_path.read_text())


def cache_dir() -> Path:
    env = os.environ.get("MATTHAN_SIM_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "matthan-agent" / "sim"


def stream_key(scene: SceneSpec, fps: int, keyframe_s: float, size: tuple[int, int], codec: str, role: str) -> str:
    scene_desc = dataclasses.asdict(scene)
    if not scene.clip:  # keys of rendered scenes stay what they were before clips existed
        del scene_desc["clip"], scene_desc["clip_start_s"]
    desc = {"v": RENDER_VERSION, "scene": scene_desc, "fps": fps, "keyframe_s": keyframe_s,
            "size": list(size), "codec": codec, "role": role}
    if scene.clip:  # a replaced clip must not reuse the old encoding
        st = os.stat(scene.clip)
        desc["clip_stat"] = [st.st_size, st.st_mtime_ns]
    return hashlib.sha256(json.dumps(desc, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _encoder_options(codec: str, gop: int, role: str) -> dict[str, str]:
    kbps = MAX_KBPS[role]
    if codec == "h264":
        return {"preset": "veryfast", "tune": "zerolatency", "crf": "27",
                "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:repeat-headers=1:sliced-threads=0:"
                               f"vbv-maxrate={kbps}:vbv-bufsize={kbps * 2}"}
    return {"preset": "ultrafast", "crf": "30",
            "x265-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:repeat-headers=1:log-level=error:"
                           f"vbv-maxrate={kbps}:vbv-bufsize={kbps * 2}"}


def encode_stream(scene: SceneSpec, *, fps: int, keyframe_s: float, size: tuple[int, int], codec: str = "h264",
                  role: str = "sub") -> EncodedStream:
    """Return the encoded stream for these settings, encoding it first unless the cache has it."""
    key = stream_key(scene, fps, keyframe_s, size, codec, role)
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    gop = round(keyframe_s * fps)
    out = EncodedStream(key, codec, size[0], size[1], fps, gop, root / f"{key}.es", root / f"{key}.json",
                        root / f"{key}.snap", root / f"{key}.gt.json")
    if out.index_path.exists():
        return out
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be encoding the same scene right now
        if not out.index_path.exists():
            _encode(scene, out, keyframe_s, role)
    return out


def _encode(scene: SceneSpec, out: EncodedStream, keyframe_s: float, role: str) -> None:
    import av
    import cv2

    from agent.simulator.scene import frame_count, ground_truth, make_context, render_frame

    encoder = CODECS[out.codec]
    if encoder not in av.codecs_available:
        raise EncodeUnavailable(f"PyAV here has no {encoder} encoder; cannot make a {out.codec} stream")
    log.info("encoding scene %s %dx%d %s at %d fps (cached as %s)", scene.name, out.width, out.height, out.codec,
             out.fps, out.key)
    ctx = make_context(scene, out.width, out.height, out.fps)
    cc = av.CodecContext.create(encoder, "w")
    cc.width, cc.height, cc.pix_fmt = out.width, out.height, "yuv420p"
    cc.time_base = Fraction(1, out.fps)
    cc.framerate = Fraction(out.fps, 1)
    cc.options = _encoder_options(out.codec, out.gop, role)
    frames: list[list[int]] = []
    snaps: list[list[int]] = []
    snap_every = max(1, out.fps // SNAPSHOTS_PER_S)
    n = frame_count(scene, out.fps)
    tmp_es, tmp_snap = out.es_path.with_suffix(".es.tmp"), out.snap_path.with_suffix(".snap.tmp")
    with open(tmp_es, "wb") as es, open(tmp_snap, "wb") as snap:

        def write(packets: Any) -> None:
            for pkt in packets:
                data = bytes(pkt)
                frames.append([es.tell(), len(data), int(pkt.is_keyframe)])
                es.write(data)

        for i in range(n):
            bgr = render_frame(ctx, i)
            if i % snap_every == 0:
                ok, jpg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, SNAPSHOT_QUALITY])
                assert ok
                snaps.append([i, snap.tell(), len(jpg)])
                snap.write(jpg.tobytes())
            yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
            vf = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            vf.pts = i
            write(cc.encode(vf))
        write(cc.encode(None))
    if len(frames) != n or not all(f[2] == (i % out.gop == 0) for i, f in enumerate(frames)):
        raise RuntimeError(f"encoder produced {len(frames)} packets for {n} frames or misplaced keyframes")
    os.replace(tmp_es, out.es_path)
    os.replace(tmp_snap, out.snap_path)
    out.gt_path.write_text(json.dumps(ground_truth(scene, out.fps, keyframe_s), indent=1))
    index = {"codec": out.codec, "fps": out.fps, "width": out.width, "height": out.height, "gop": out.gop,
             "frames": frames, "snapshots": snaps}
    tmp_idx = out.index_path.with_suffix(".json.tmp")
    tmp_idx.write_text(json.dumps(index))
    os.replace(tmp_idx, out.index_path)  # last: its presence means the whole set is complete


class SnapshotStore:
    """The stored JPEGs of one stream, looked up by frame index (nearest earlier snapshot)."""

    def __init__(self, stream: EncodedStream) -> None:
        idx = stream.index()
        self._snaps = idx["snapshots"]
        self._data = stream.snap_path.read_bytes()
        self.frames = len(idx["frames"])
        self.fps = stream.fps

    def jpeg_at_frame(self, frame: int) -> bytes:
        frame %= self.frames
        best = self._snaps[0]
        for entry in self._snaps:
            if entry[0] <= frame:
                best = entry
            else:
                break
        _, off, size = best
        return self._data[off:off + size]
