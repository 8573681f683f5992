"""The per-camera pipeline a worker process runs: source -> detector -> tracker -> event and report sinks.

`PipelineSettings` loads without the pipeline (agent.lazy), so the supervisor can build camera jobs without
loading numpy, OpenCV and PyAV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.lazy import lazy_exports

_EXPORTS = {
    "CameraPipeline": "agent.camera.pipeline",
    "EventSink": "agent.camera.pipeline",
    "ReportSink": "agent.camera.pipeline",
    "SourceFactory": "agent.camera.pipeline",
    "PipelineSettings": "agent.camera.settings",
    "OnvifMotionEvents": "agent.camera.onvif_events",
    "OnvifEventsSettings": "agent.camera.settings",
}
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
__all__ = [
    "CameraPipeline",
    "EventSink",
    "OnvifEventsSettings",
    "OnvifMotionEvents",
    "PipelineSettings",
    "ReportSink",
    "SourceFactory",
]

if TYPE_CHECKING:
    from agent.camera.onvif_events import OnvifMotionEvents
    from agent.camera.pipeline import CameraPipeline, EventSink, ReportSink, SourceFactory
    from agent.camera.settings import OnvifEventsSettings, PipelineSettings
