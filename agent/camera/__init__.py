"""The per-camera pipeline a worker process runs: source -> detector -> tracker -> event and report sinks."""

from agent.camera.pipeline import CameraPipeline, EventSink, ReportSink, SourceFactory
from agent.camera.settings import PipelineSettings

__all__ = ["CameraPipeline", "EventSink", "PipelineSettings", "ReportSink", "SourceFactory"]
