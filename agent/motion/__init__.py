"""Motion detection and event tracking: pure algorithms (numpy, OpenCV, agent.models), no I/O.

Public surface: `MotionDetector.step(y, ts) -> MotionResult`, `EventTracker.update(result) -> list[MotionEvent]`,
their settings, and `encode_jpeg` for the peak-frame snapshot. Exports load on first use (agent.lazy): the
supervisor imports the settings without loading numpy and OpenCV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.lazy import lazy_exports

_EXPORTS = {
    "SUPPRESSED_GLOBAL": "agent.motion.detector",
    "SUPPRESSED_WARMUP": "agent.motion.detector",
    "MotionDetector": "agent.motion.detector",
    "MotionSettings": "agent.motion.settings",
    "Polygon": "agent.motion.settings",
    "TrackerSettings": "agent.motion.settings",
    "Zone": "agent.motion.settings",
    "SnapshotSettings": "agent.motion.settings",
    "encode_jpeg": "agent.motion.snapshot",
    "EventTracker": "agent.motion.tracker",
    "union_box": "agent.motion.tracker",
}
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
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

if TYPE_CHECKING:
    from agent.motion.detector import SUPPRESSED_GLOBAL, SUPPRESSED_WARMUP, MotionDetector
    from agent.motion.settings import MotionSettings, Polygon, SnapshotSettings, TrackerSettings, Zone
    from agent.motion.snapshot import encode_jpeg
    from agent.motion.tracker import EventTracker, union_box
