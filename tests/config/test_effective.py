"""Per-camera settings: overrides on top of motion defaults, matching entries to discovered cameras, derived values."""

from __future__ import annotations

import pickle

import pydantic
import pytest

from agent.config import AgentConfig, ConfigError, effective_camera, match_camera, validate_data
from agent.config.types import topic_safe
from agent.models import DecodeMode

UUID = "urn:uuid:6b1f0c2e-8a4d-4c1e-9f3a-2d5e7b9c1a00"


def make(**overrides: object) -> AgentConfig:
    data: dict[str, object] = {"site_id": "xa-tan-phu", "agent_id": "pi-test", "mqtt": {"host": "127.0.0.1"}}
    data.update(overrides)
    return validate_data(data)


def test_effective_camera_override_beats_default() -> None:
    """A camera's own sensitivity and decode mode win; what it leaves out comes from motion defaults."""
    cfg = make(
        motion={"sensitivity": 0.3, "analysis_fps": 4, "snapshot": {"width": 800}},
        cameras=[{"name": "cho", "sensitivity": 0.9, "decode_mode": "keyframe",
                  "zones": {"cong": [[0, 0], [1, 0], [1, 1]]}}],
    )
    settings = effective_camera(cfg, cfg.cameras[0])
    assert settings.sensitivity == 0.9
    assert settings.decode_mode is DecodeMode.KEYFRAME
    assert settings.analysis_fps == 4
    assert settings.snapshot_width == 800
    assert settings.zones == {"cong": ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0))}


def test_effective_camera_without_entry_uses_defaults() -> None:
    """A discovered camera with no entry gets the defaults and the name it was given."""
    cfg = make()
    settings = effective_camera(cfg, None, name="cam-3")
    assert settings.name == "cam-3"
    assert settings.enabled is True
    assert settings.min_stream_width == 320
    assert settings.decode_mode is DecodeMode.ADAPTIVE
    assert settings.masks == ()


def test_effective_camera_is_picklable() -> None:
    """Settings cross into a spawned worker process, so they must pickle round-trip."""
    cfg = make(cameras=[{"name": "cho", "credentials": {"username": "admin", "password": "abcd1234"}}])
    settings = effective_camera(cfg, cfg.cameras[0])
    again = pickle.loads(pickle.dumps(settings))
    assert again == settings
    assert again.credentials is not None and again.credentials.secret() == "abcd1234"


def test_match_camera_prefers_uuid_then_ip_then_name() -> None:
    """uuid beats ip beats name, so an entry pinned to a uuid follows its camera after a DHCP change."""
    cfg = make(cameras=[{"name": "a", "ip": "10.0.0.5"}, {"name": "b", "uuid": UUID.upper()}, {"name": "c"}])
    assert match_camera(cfg, uuid=UUID, ip="10.0.0.5", name="c").name == "b"
    assert match_camera(cfg, uuid="urn:uuid:00000000-0000-0000-0000-000000000000", ip="10.0.0.5").name == "a"
    assert match_camera(cfg, ip="10.9.9.9", name="c").name == "c"
    assert match_camera(cfg, ip="not-an-ip", name="zz") is None


def test_config_models_are_frozen() -> None:
    """Config objects cannot be changed after loading (they are shared between threads)."""
    cfg = make()
    with pytest.raises(pydantic.ValidationError):
        cfg.mqtt.host = "elsewhere"  # type: ignore[misc]


def test_config_derived_values() -> None:
    """The topic prefix is substituted, the TLS port defaults to 8883, the client id is derived."""
    cfg = make(mqtt={"host": "broker", "tls": {}})
    assert cfg.topic_prefix == "matthan/v1/xa-tan-phu/pi-test"
    assert cfg.mqtt.broker_port == 8883 and cfg.mqtt.tls_enabled
    assert cfg.client_id == "matthan-xa-tan-phu-pi-test"
    assert make().mqtt.broker_port == 1883


def test_config_agent_id_defaults_to_topic_safe_hostname() -> None:
    """Without agent_id the host name is used, made safe for topics."""
    assert topic_safe("Pi UBND#1.local") == "pi-ubnd-1-local"
    data = {"site_id": "x", "mqtt": {"host": "h"}}
    cfg = validate_data(data)
    assert cfg.agent_id == topic_safe(cfg.agent_id)


def test_config_validate_data_raises_with_every_issue() -> None:
    """Programmatic validation raises ConfigError carrying one issue per problem, with key paths."""
    with pytest.raises(ConfigError) as exc:
        validate_data({"site_id": "x", "mqtt": {"host": "h", "port": 0}, "workers": {"count": -1}})
    assert [i.path for i in exc.value.issues] == ["mqtt.port", "workers.count"]
    assert all(i.line is None and i.file == "<config>" for i in exc.value.issues)


def test_config_sizes_accept_units() -> None:
    """Byte sizes take human units."""
    cfg = make(storage={"outbox_max_bytes": "64MiB", "snapshot_quota_bytes": "2GB"})
    assert cfg.storage.outbox_max_bytes == 64 * 1024 * 1024
    assert cfg.storage.snapshot_quota_bytes == 2_000_000_000


def test_effective_camera_snapshot_interval_inherits_and_overrides() -> None:
    """snapshot_interval_s defaults to 1 s, follows motion:, and a camera's own value wins."""
    cfg = make(motion={"snapshot_interval_s": 2}, cameras=[{"name": "a", "snapshot_interval_s": 0.5}, {"name": "b"}])
    assert effective_camera(make(), None, name="x").snapshot_interval_s == 1.0
    assert [effective_camera(cfg, c).snapshot_interval_s for c in cfg.cameras] == [0.5, 2.0]
    with pytest.raises(ConfigError) as exc:
        make(cameras=[{"name": "a", "snapshot_interval_s": 10}], motion={"snapshot_interval_s": 0.1})
    assert [i.path for i in exc.value.issues] == ["cameras[0].snapshot_interval_s", "motion.snapshot_interval_s"]


def test_config_snapshot_stream_needs_http_url() -> None:
    """`stream: snapshot` on a camera given by an rtsp url is refused, whether set on it or inherited from motion."""
    with pytest.raises(ConfigError) as own:
        make(cameras=[{"name": "a", "url": "rtsp://10.0.0.5/s", "stream": "snapshot"}])
    assert [i.path for i in own.value.issues] == ["cameras[0].stream"]
    assert "http://" in own.value.issues[0].message
    with pytest.raises(ConfigError) as inherited:
        make(motion={"stream": "snapshot"}, cameras=[{"name": "a", "url": "rtsp://10.0.0.5/s"},
                                                     {"name": "b", "url": "http://10.0.0.6/img"},
                                                     {"name": "c", "url": "rtsp://10.0.0.7/s", "stream": "auto"}])
    assert [i.path for i in inherited.value.issues] == ["cameras[0].url"]
    assert "motion.stream is snapshot" in inherited.value.issues[0].message


def test_config_replay_rate_zero_is_unlimited_and_bounded() -> None:
    """replay_rate_per_s: 0 (unlimited) and 5000 are accepted and reach the relay; negatives and 10001 are not."""
    from agent.app.mapping import relay_settings

    assert make().mqtt.replay_rate_per_s == 20
    assert relay_settings(make(mqtt={"host": "h", "replay_rate_per_s": 0})).replay_rate == 0
    assert make(mqtt={"host": "h", "replay_rate_per_s": 5000}).mqtt.replay_rate_per_s == 5000
    for bad in (-1, 10_001):
        with pytest.raises(ConfigError) as exc:
            make(mqtt={"host": "h", "replay_rate_per_s": bad})
        assert [i.path for i in exc.value.issues] == ["mqtt.replay_rate_per_s"]
