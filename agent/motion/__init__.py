"""Motion detection and event tracking: pure algorithms (numpy, OpenCV, agent.models), no I/O.

Public surface: `MotionDetector.step(y, ts) -> MotionResult`, `EventTracker.update(result) -> list[MotionEvent]`,
their settings, and `encode_jpeg` for the peak-frame snapshot.
"""

from agent.motion.detector import SUPPRESSED_GLOBAL, SUPPRESSED_WARMUP, MotionDetector
from agent.motion.settings import MotionSettings, Polygon, TrackerSettings, Zone
from agent.motion.snapshot import SnapshotSettings, encode_jpeg
from agent.motion.tracker import EventTracker, union_box

__all__ = [
    "SUPPRESSED_GLOBAL",
    "SUPPRESSED_WARMUP",
    "EventTracker",
    "MotionDetector",
    "MotionSettings",
    "Polygon",
    "SnapshotSettings",
    "TrackerSettings",
    "Zone",
    "encode_jpeg",
    "union_box",
]
