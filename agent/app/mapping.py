"""From the validated configuration to each package's own plain settings.

The packages never import agent.config (so that each can be tested with a one-line settings object); this module
is the single place where the installer's YAML becomes their numbers.
"""

from __future__ import annotations

from agent import __version__
from agent.config import AgentConfig
from agent.discovery.settings import CameraOverride, Credential, DiscoverySettings
from agent.mqtt import MqttSettings, RelaySettings
from agent.supervisor import SupervisorSettings

WORKER_ENTRY = "agent.app.worker:run_cameras"


def mqtt_settings(cfg: AgentConfig) -> MqttSettings:
    m = cfg.mqtt
    tls = m.tls if m.tls_enabled else None
    return MqttSettings(
        host=m.host,
        port=m.broker_port,
        client_id=cfg.client_id,
        prefix=cfg.topic_prefix,
        username=m.username,
        password=m.secret(),
        tls=tls is not None,
        ca_file=str(tls.ca_file) if tls is not None and tls.ca_file else None,
        cert_file=str(tls.cert_file) if tls is not None and tls.cert_file else None,
        key_file=str(tls.key_file) if tls is not None and tls.key_file else None,
        tls_insecure=bool(tls is not None and tls.insecure),
        keepalive_s=m.keepalive,
        version=__version__,
        ha_discovery=cfg.health.home_assistant.enabled,
        ha_prefix=cfg.health.home_assistant.discovery_prefix,
    )


def relay_settings(cfg: AgentConfig) -> RelaySettings:
    return RelaySettings(window=cfg.mqtt.inflight_window, replay_rate=cfg.mqtt.replay_rate_per_s,
                         station_ack=cfg.mqtt.station_ack)


def supervisor_settings(cfg: AgentConfig) -> SupervisorSettings:
    return SupervisorSettings(worker_entry=WORKER_ENTRY, workers=cfg.workers.count or None,
                              log_level=cfg.logging.level)


def discovery_settings(cfg: AgentConfig) -> DiscoverySettings:
    d = cfg.discovery
    overrides = []
    for cam in cfg.cameras:
        cred = None
        if cam.credentials is not None:
            cred = Credential(cam.credentials.username, cam.credentials.secret() or "")
        overrides.append(CameraOverride(name=cam.name, ip=str(cam.ip) if cam.ip else None, endpoint_uuid=cam.uuid,
                                        credential=cred, substream_min_width=cam.min_stream_width))
    return DiscoverySettings(
        interfaces=tuple(str(i) for i in d.interfaces),
        probe_window_s=d.probe_timeout_s,
        unicast_targets=tuple(str(t) for t in d.targets),
        listen_hello=d.hello_listener,
        scan_subnets=tuple(str(s) for s in d.scan_subnets),
        scan_rate_per_s=d.scan_rate_per_s,
        credentials=tuple(Credential(c.username, c.secret() or "") for c in d.credentials),
        cameras=tuple(overrides),
        substream_min_width=cfg.motion.min_stream_width,
    )
