"""A camera job: everything a worker process needs to run one camera, and nothing it would have to look up.

Jobs cross the process boundary (pickled by the `spawn` context) and are compared by value on a reload, so a job
holds only frozen settings and plain strings: if a camera's settings did not change, its job compares equal and its
worker is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.camera import PipelineSettings


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

    def __repr__(self) -> str:
        # The pipeline URI may carry the camera's password (rtsp://user:pass@...): never print it.
        return f"CameraJob({self.camera_id!r})"
