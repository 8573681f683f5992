"""From the validated configuration (`agent.config.CameraSettings`) to the camera pipeline's plain settings.

The motion, video and camera packages never import the configuration; this one mapping, in the composition root,
is where the installer's words (sensitivity 0..1, osd_mask: auto, snapshot_interval_s) become detector and source
numbers, so `run` and `replay` behave identically.
"""

from __future__ import annotations

import dataclasses

from agent.camera.settings import PipelineSettings
from agent.config import CameraSettings
from agent.motion import MotionSettings, SnapshotSettings, TrackerSettings, Zone
from agent.video import SourceSettings

# Sensitivity 0 -> a pixel must differ by 32 grey levels; 1 -> by 4. The default 0.5 gives the detector's 18.
THRESHOLD_AT_0 = 32
THRESHOLD_AT_1 = 4


def threshold_for(sensitivity: float) -> int:
    return round(THRESHOLD_AT_0 - (THRESHOLD_AT_0 - THRESHOLD_AT_1) * min(max(sensitivity, 0.0), 1.0))


def motion_settings(cam: CameraSettings) -> MotionSettings:
    return MotionSettings(
        work_width=cam.downscale_width,
        threshold=threshold_for(cam.sensitivity),
        min_area=cam.min_area,
        global_change_fraction=cam.global_change_fraction,
        noise_map=cam.noise_map,
        auto_osd_mask=str(cam.osd_mask) == "auto",
        masks=tuple(tuple((float(x), float(y)) for x, y in polygon) for polygon in cam.masks),
        zones=tuple(Zone(name, tuple((float(x), float(y)) for x, y in polygon)) for name, polygon in cam.zones.items()),
    )


def tracker_settings(cam: CameraSettings) -> TrackerSettings:
    return TrackerSettings(min_motion_s=cam.min_motion_s, event_gap_s=max(cam.event_gap_s, 0.1),
                           max_event_s=cam.max_event_s)


def pipeline_settings(cam: CameraSettings, *, camera_id: str, uri: str, snapshot: bool = False,
                      source: SourceSettings | None = None) -> PipelineSettings:
    """Pipeline settings for one configured camera reading `uri` (the stream the discovery layer resolved).

    `snapshot`: `uri` is an HTTP picture URL, polled every `cam.snapshot_interval_s` instead of streamed.
    """
    base = source or SourceSettings()
    return PipelineSettings(
        camera_id=camera_id,
        uri=uri,
        snapshot=snapshot,
        source=dataclasses.replace(base, decode_mode=cam.decode_mode, analysis_fps=cam.analysis_fps,
                                   snapshot_interval_s=cam.snapshot_interval_s),
        motion=motion_settings(cam),
        tracker=tracker_settings(cam),
        jpeg=SnapshotSettings(max_width=cam.snapshot_width, quality=cam.snapshot_jpeg_quality),
    )
