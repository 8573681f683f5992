"""From the validated configuration to each package's own plain settings.

The packages never import agent.config (so that each can be tested with a one-line settings object); this module
is the single place where the installer's YAML becomes their numbers.
"""

from __future__ import annotations

from agent import __version__
from agent.config import AgentConfig
from agent.discovery.settings import DiscoverySettings
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
    # One mapping for the daemon and `discover --config`, so both read the configuration the same way.
    from agent.cli.discover import settings_kwargs_from_config

    return DiscoverySettings(**settings_kwargs_from_config(cfg))
