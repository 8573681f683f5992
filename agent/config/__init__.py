"""The agent's configuration: strict models, YAML loading with line-numbered errors, per-camera resolution.

Public surface (everything else is private to this package):

    cfg = load_config("/etc/matthan-agent/agent.yaml")   # raises ConfigError(issues)
    entry = match_camera(cfg, uuid=..., ip=..., name=...)
    settings = effective_camera(cfg, entry, name="cam-1")
"""

from __future__ import annotations

from agent.config.effective import CameraSettings, effective_camera, match_camera
from agent.config.issues import ConfigError, ConfigIssue
from agent.config.loader import iter_secrets, load_config, validate_data
from agent.config.schema import (
    AgentConfig,
    HealthConfig,
    HomeAssistantConfig,
    LoggingConfig,
    StorageConfig,
    WorkersConfig,
)
from agent.config.schema_camera import (
    CameraCredentials,
    CameraEntry,
    EventSource,
    MotionConfig,
    OsdMask,
    SnapshotConfig,
    StreamChoice,
)
from agent.config.schema_network import CredentialSet, DiscoveryConfig, MqttConfig, TlsConfig

__all__ = [
    "AgentConfig",
    "CameraCredentials",
    "CameraEntry",
    "CameraSettings",
    "ConfigError",
    "ConfigIssue",
    "CredentialSet",
    "DiscoveryConfig",
    "EventSource",
    "HealthConfig",
    "HomeAssistantConfig",
    "LoggingConfig",
    "MotionConfig",
    "MqttConfig",
    "OsdMask",
    "SnapshotConfig",
    "StorageConfig",
    "StreamChoice",
    "TlsConfig",
    "WorkersConfig",
    "effective_camera",
    "iter_secrets",
    "load_config",
    "match_camera",
    "validate_data",
]
