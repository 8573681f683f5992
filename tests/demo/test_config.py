"""The agent configuration the demo generates is one the real agent accepts, in both cluster modes."""

from __future__ import annotations

import pytest
import yaml

from agent.config.loader import validate_data
from agent.demo.config import TOPIC_PREFIX, DemoCamera, agent_config, config_yaml

CAMERAS = [DemoCamera("cong-lang", "rtsp://admin:matthan123@127.0.0.1:5541/sub"),
           DemoCamera("cho", "rtsp://admin:matthan123@127.0.0.1:5542/sub")]


def test_config_namespace_mode_probes_only_lan0() -> None:
    """Namespace mode: discovery on, restricted to the namespace's lan0, with the simulator's credentials."""
    data = agent_config(broker_port=40001, state_dir="/tmp/x/state", cameras=CAMERAS, discovery=True)
    cfg = validate_data(data)
    assert cfg.discovery.enabled and list(cfg.discovery.interfaces) == ["lan0"]
    assert [c.username for c in cfg.discovery.credentials] == ["admin"]
    assert all(c.url is None for c in cfg.cameras)
    assert cfg.mqtt.host == "127.0.0.1" and cfg.mqtt.broker_port == 40001
    assert cfg.health.interval_s == 10 and cfg.topic_prefix == TOPIC_PREFIX


def test_config_loopback_mode_lists_each_url_without_discovery() -> None:
    """Loopback mode: discovery off and every camera listed by its direct RTSP URL, decode_mode adaptive."""
    cfg = validate_data(agent_config(broker_port=40002, state_dir="/tmp/x/state", cameras=CAMERAS, discovery=False))
    assert not cfg.discovery.enabled
    assert [(c.name, str(c.url)) for c in cfg.cameras] == [(c.name, c.url) for c in CAMERAS]
    assert {c.decode_mode for c in cfg.cameras} == {"adaptive"}


def test_config_loopback_mode_refuses_a_camera_without_url() -> None:
    """A loopback camera without a URL could never be reached: refused before anything starts."""
    with pytest.raises(ValueError, match="cho"):
        agent_config(broker_port=1, state_dir="/s", cameras=[DemoCamera("cho")], discovery=False)


def test_config_yaml_round_trips_and_says_how_cameras_are_reached() -> None:
    """The YAML file loads back to the same data and its header says which mode wrote it."""
    data = agent_config(broker_port=40003, state_dir="/tmp/x/state", cameras=CAMERAS, discovery=False)
    text = config_yaml(data, mode="loopback mode")
    assert yaml.safe_load(text) == data
    assert "discovery is OFF" in text.splitlines()[1]
    assert "&id" not in text  # no YAML anchors for the shared zones: a technician reads this file
