"""`matthan-agent replay PATH`: run ingest, detector and tracker over a recording, as fast as it decodes.

Installers use it to tune a camera on recorded footage: which frames count as motion, which events come out, and
with `--config FILE --camera NAME` exactly the settings the agent would use for that camera.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

EX_DATAERR = 65  # the input is not a readable video / image sequence
EX_NOINPUT = 66  # the input does not exist
EX_USAGE = 64
EX_CONFIG = 78


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH",
                        help="a video file, an image sequence such as frames/in%%06d.jpg, or an rtsp:// URL")
    parser.add_argument("--fps", type=float, default=None, metavar="F",
                        help="timestamp basis for image sequences, frames per second (default 5)")
    parser.add_argument("--config", default=argparse.SUPPRESS, metavar="FILE",
                        help="use the motion settings of this agent configuration")
    parser.add_argument("--camera", default=None, metavar="NAME",
                        help="with --config: use this camera's settings (masks, zones, overrides)")
    parser.add_argument("--jsonl", action="store_true", help="print one JSON object per line")
    parser.add_argument("--frames", action="store_true", help="also print a line per analysed frame")


def _fail(code: int, message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


class _Printer:
    def __init__(self, jsonl: bool, frames: bool) -> None:
        self.jsonl, self.frames = jsonl, frames

    def emit(self, obj: dict[str, Any], text: str) -> None:
        print(json.dumps(obj, ensure_ascii=False) if self.jsonl else text, flush=True)


def _settings(args: argparse.Namespace) -> tuple[Any, str] | int:
    """(PipelineSettings, camera id) from --config/--camera, or defaults; an int exit code on error."""
    from agent.camera import PipelineSettings
    from agent.models import DecodeMode
    from agent.video import SourceSettings

    camera_id = args.camera or "replay"
    source = SourceSettings(decode_mode=DecodeMode.FULL, sequence_fps=args.fps or 5.0)
    config_path = getattr(args, "config", None)
    if config_path is None:
        if args.camera:
            return _fail(EX_USAGE, "--camera needs --config FILE (the camera's settings live in the configuration)")
        return PipelineSettings(camera_id, args.path, source=source), camera_id
    try:
        from agent.app.config_map import pipeline_settings
        from agent.config import ConfigError, effective_camera, load_config, match_camera
    except ImportError as exc:  # pragma: no cover - only on a broken install
        return _fail(EX_CONFIG, f"cannot read configurations here ({exc})")
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        for issue in exc.issues:
            print(f"error: {issue}", file=sys.stderr)
        return EX_CONFIG
    except OSError as exc:
        return _fail(EX_CONFIG, f"cannot read {config_path}: {exc.strerror}")
    entry = None
    if args.camera:
        entry = match_camera(cfg, name=args.camera)
        if entry is None:
            names = ", ".join(e.label() for e in cfg.cameras) or "none"
            return _fail(EX_CONFIG, f"no camera named {args.camera!r} in {config_path} (cameras: {names})")
    cam = effective_camera(cfg, entry, name=camera_id)
    settings = pipeline_settings(cam, camera_id=camera_id, uri=args.path, source=source)
    # Replay decodes every frame whatever the camera's decode mode; its analysis rate still applies, as in the agent.
    full = dataclasses.replace(settings.source, decode_mode=DecodeMode.FULL)
    return dataclasses.replace(settings, source=full), camera_id


def run(args: argparse.Namespace) -> int:
    import os

    import cv2

    from agent.models import EventKind
    from agent.motion import EventTracker, MotionDetector
    from agent.video import NotFound, SourceError, open_source
    from agent.video.sequence import BadPattern

    cv2.setNumThreads(1)  # per-op threads cost more than they give at 320 px
    resolved = _settings(args)
    if isinstance(resolved, int):
        return resolved
    settings, camera_id = resolved
    path = args.path
    if "://" not in path and "%" not in path and not os.path.exists(path):
        return _fail(EX_NOINPUT, f"{path}: no such file")
    if "://" not in path and "%" not in path and os.path.isdir(path):
        return _fail(EX_USAGE, f"{path} is a folder; for an image sequence give a pattern like {path}/in%06d.jpg")
    try:
        source = open_source(path, settings.source)
    except BadPattern as exc:
        return _fail(EX_USAGE, str(exc))
    detector = MotionDetector(settings.motion)
    tracker = EventTracker(camera_id, settings.tracker)
    out = _Printer(args.jsonl, args.frames)
    index_of: dict[float, int] = {}
    peak_boxes: dict[str, list[list[float]]] = {}
    counts = {"frames": 0, "analysed": 0, "events": 0, "motion_frames": 0}
    detect_s = 0.0
    period = 0.8 / settings.source.analysis_fps if getattr(args, "config", None) else 0.0
    last_ts = -1e18
    first_ts: float | None = None

    def emit_event(event: Any) -> None:
        if event.kind != EventKind.END:
            return
        counts["events"] += 1
        start_frame = index_of.get(event.start_ts)
        end_frame = index_of.get(event.end_ts if event.end_ts is not None else event.ts)
        boxes = peak_boxes.pop(event.event_id, [])
        out.emit(
            {"type": "event", "id": event.event_id, "start_frame": start_frame, "end_frame": end_frame,
             "start_ts": round(event.start_ts, 3), "end_ts": round(event.end_ts or event.ts, 3),
             "peak_score": round(event.peak_score, 5), "boxes": boxes,
             "union_box": event.union_box.as_list() if event.union_box else None, "zones": list(event.zones),
             "frames_analysed": event.frames_analysed},
            f"event {event.event_id[:8]}  frames {start_frame}..{end_frame}  "
            f"{event.start_ts:.2f}..{(event.end_ts or event.ts):.2f} s  peak {event.peak_score:.4f}  "
            f"zones {','.join(event.zones) or '-'}",
        )

    started = time.perf_counter()
    try:
        for frame in source.frames():
            counts["frames"] += 1
            if first_ts is None:
                first_ts = frame.ts
            if frame.ts - last_ts < period:
                continue
            last_ts = frame.ts
            t0 = time.perf_counter()
            result = detector.step(frame.y, frame.ts)
            events = tracker.update(result)
            detect_s += time.perf_counter() - t0
            counts["analysed"] += 1
            counts["motion_frames"] += result.motion
            index_of[frame.ts] = frame.index
            if tracker.peak_ts == frame.ts and tracker.event_id is not None:
                peak_boxes[tracker.event_id] = [b.as_list() for b in result.boxes]
            if out.frames:
                out.emit({"type": "frame", "frame": frame.index, "ts": round(frame.ts, 3), "motion": result.motion,
                          "score": round(result.score, 5)},
                         f"frame {frame.index}  {frame.ts:.3f} s  {'MOTION' if result.motion else '-'}  "
                         f"score {result.score:.4f}{'  (' + result.suppressed + ')' if result.suppressed else ''}")
            for event in events:
                emit_event(event)
    except NotFound as exc:
        return _fail(EX_NOINPUT, exc.message)
    except SourceError as exc:
        if counts["frames"] == 0:
            return _fail(EX_DATAERR, exc.message)
        print(f"warning: stopped early: {exc.message}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    if counts["frames"] == 0:
        return _fail(EX_DATAERR, f"{source.describe()}: no frames could be decoded")
    for event in tracker.flush(last_ts):
        emit_event(event)
    wall = time.perf_counter() - started
    decoded = max(1, source.frames_decoded)
    summary = {
        "type": "summary", "source": source.describe(), "camera": camera_id, "frames": counts["frames"],
        "analysed": counts["analysed"], "motion_frames": counts["motion_frames"], "events": counts["events"],
        "duration_s": round(last_ts - (first_ts or 0.0), 3), "wall_s": round(wall, 3),
        "decode_ms_per_frame": round(1000 * source.decode_s / decoded, 3),
        "detect_ms_per_frame": round(1000 * detect_s / max(1, counts["analysed"]), 3),
        "osd_boxes": [[round(v, 4) for v in box] for box in detector.osd_boxes],
    }
    out.emit(summary, (f"{counts['frames']} frames ({counts['analysed']} analysed, {counts['motion_frames']} with "
                       f"motion), {counts['events']} events; decode {summary['decode_ms_per_frame']} ms/frame, "
                       f"detect {summary['detect_ms_per_frame']} ms/frame"))
    return 0
