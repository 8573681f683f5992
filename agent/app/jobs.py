"""A camera job: everything a worker process needs to run one camera, and nothing it would have to look up.

Jobs cross the process boundary (pickled by the `spawn` context) and are compared by value on a reload, so a job
holds only frozen settings and plain strings: if a camera's settings did not change, its job compares equal and its
worker is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.camera import PipelineSettings
from agent.camera.settings import OnvifEventsSettings


@dataclass(frozen=True, slots=True)
class CameraJob:
    camera_id: str
    pipeline: PipelineSettings
    agent_id: str
    topic_prefix: str
    outbox_path: str
    outbox_max_bytes: int
    outbox_max_rows: int
    snapshot_dir: str
    snapshot_quota_bytes: int
    # Camera-side motion alarms (event_source onvif_events or both); None for video-only cameras.
    onvif_events: OnvifEventsSettings | None = None

    @property
    def runs_video(self) -> bool:
        """`onvif_events` cameras are watched through their own alarm only; `both` and `video` decode video."""
        return self.onvif_events is None or not self.onvif_events.emit_events

    def __repr__(self) -> str:
        # The pipeline URI may carry the camera's password (rtsp://user:pass@...): never print it.
        return f"CameraJob({self.camera_id!r})"
