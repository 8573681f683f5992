"""Pure parts of the MQTT layer: topic building, payload encoding, stamping, backoff and replay pacing."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.models import EventKind, MotionEvent
from agent.mqtt import payloads, records
from agent.mqtt.relay import TokenBucket
from agent.mqtt.settings import MqttSettings, RelaySettings, backoff_delay
from agent.mqtt.topics import TopicError, Topics, default_prefix
from agent.outbox import Priority, Record


def test_topics_prefix_and_levels() -> None:
    """Topics are built under the prefix and identifiers with separators or wildcards are refused."""
    t = Topics(default_prefix("xa-tan-phu", "pi-01"))
    assert t.camera_status("cam-1") == "matthan/v1/xa-tan-phu/pi-01/cameras/cam-1/status"
    assert t.event_snapshot("e1") == "matthan/v1/xa-tan-phu/pi-01/events/motion/e1/snapshot"
    for bad in ("a/b", "a+", "#", "", "x" * 200, "a\x00"):
        with pytest.raises(TopicError):
            t.camera_motion(bad)
    with pytest.raises(TopicError):
        Topics("matthan/v1/#")


def test_topics_cmd_name_roundtrip() -> None:
    """cmd_name inverts cmd and rejects deeper or foreign topics."""
    t = Topics("p/q")
    assert t.cmd_name(t.cmd("snapshot")) == "snapshot"
    assert t.cmd_name("p/q/cmd/a/b") is None and t.cmd_name("p/q/cmd_resp/x") is None and t.cmd_name("p/q/cmd/") is None


def test_topics_ha_ids_sanitised() -> None:
    """Home Assistant discovery topics only contain characters HA accepts."""
    t = Topics("p")
    assert t.ha_config("sensor", "matthan_pi.01", "cổng 1") == "homeassistant/sensor/matthan_pi_01/c_ng_1/config"


@given(st.text(min_size=0, max_size=40), st.integers(0, 2**53), st.booleans(), st.dictionaries(
    st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=8), st.none()), max_size=4))
def test_stamp_produces_valid_json(msg_id: str, seq: int, hist: bool, body: dict[str, object]) -> None:
    """Stamping any JSON object yields valid JSON with the envelope added and the body intact."""
    raw = json.dumps({"schema": "s", **body}, separators=(",", ":")).encode()
    out = json.loads(payloads.stamp(raw, msg_id=msg_id, seq=seq, historical=hist))
    assert out["msg_id"] == msg_id and out["seq"] == seq and out.get("historical", False) is hist
    assert {k: v for k, v in out.items() if k not in ("msg_id", "seq", "historical")} == {"schema": "s", **body}


def test_stamp_leaves_binary_alone() -> None:
    """JPEG and ON/OFF payloads are not touched (their identity travels as user properties)."""
    jpeg = b"\xff\xd8\xff\xe0rest"
    assert payloads.stamp(jpeg, msg_id="a", seq=1, historical=True) == jpeg
    assert payloads.stamp(b"ON", msg_id="a", seq=1, historical=False) == b"ON"
    assert json.loads(payloads.stamp(b"{}", msg_id="a", seq=1, historical=False)) == {"msg_id": "a", "seq": 1}


def test_payloads_refuse_bad_input() -> None:
    """Wrong state, non-JPEG snapshot and incomplete command responses are refused with a clear error."""
    with pytest.raises(payloads.PayloadError):
        payloads.agent_status("maybe", "s", 0.0)
    with pytest.raises(payloads.PayloadError):
        payloads.snapshot(b"PNG...")
    with pytest.raises(payloads.PayloadError):
        payloads.command_response({"ok": True})


@pytest.mark.parametrize(("raw", "want"), [(b'{"seq": 12}', 12), (b'{"seq": -1}', None), (b'{"seq": true}', None),
                                           (b"[1]", None), (b"nonsense", None), (b'{"seq": 1.5}', None)])
def test_station_ack_parse(raw: bytes, want: int | None) -> None:
    """Only a non-negative integer seq is a usable station acknowledgement."""
    assert payloads.parse_station_ack(raw) == want


def test_records_event_priorities_and_snapshot_first() -> None:
    """An event's snapshot is queued before it, updates get the lower class, and the event refers to the JPEG."""
    t = Topics("p")
    ev = MotionEvent("e1", "cam1", EventKind.START, 1.0, 1.0)
    snap, event = records.motion_event(t, ev, b"\xff\xd8jpeg")
    assert snap.priority == Priority.SNAPSHOT and event.priority == Priority.EVENT
    assert json.loads(event.payload)["snapshot"] == {"topic": snap.topic}
    upd = records.motion_event(t, MotionEvent("e1", "cam1", EventKind.UPDATE, 1.0, 2.0))
    assert [r.priority for r in upd] == [Priority.EVENT_UPDATE]
    resp = records.command_response(t, "status", {"req_id": "r", "ok": True, "result": {}}, response_topic="s/r",
                                    correlation=b"c1")
    assert resp.topic == "s/r" and resp.correlation == b"c1" and resp.priority == Priority.COMMAND_RESPONSE
    wild = records.command_response(t, "status", {"req_id": "r", "ok": True}, response_topic="s/+/r")
    assert wild.topic == t.cmd_resp("status")
    with pytest.raises(ValueError, match="cannot be published"):
        Record("a/#", b"{}", Priority.EVENT)


def test_ha_discovery_payloads() -> None:
    """Camera discovery has a motion binary_sensor on the motion topic; all configs use the agent's availability."""
    t = Topics("p")
    cams = payloads.ha_camera_configs(t, "pi-01", "cam1", name="Cổng")
    agent = payloads.ha_agent_configs(t, "pi-01")
    assert len(cams) == 3 and len(agent) == 3
    motion = json.loads(cams[0][1])
    assert cams[0][0].startswith("homeassistant/binary_sensor/")
    assert motion["state_topic"] == t.camera_motion("cam1") and motion["device_class"] == "motion"
    for _topic, body in cams + agent:
        cfg = json.loads(body)
        assert cfg["availability_topic"] == t.status() and cfg["unique_id"]


def test_backoff_capped_and_jittered() -> None:
    """Delays double from the minimum, never exceed the cap, and lie in the upper half of their step."""
    rnd = random.Random(1)
    delays = [backoff_delay(a, 0.5, 60.0, rnd) for a in range(20)]
    assert all(0.25 <= d <= 60.0 for d in delays)
    assert max(delays[12:]) <= 60.0 and min(delays[12:]) >= 30.0
    assert len({round(d, 6) for d in delays}) == 20


def test_token_bucket_paces_replay() -> None:
    """The bucket grants `rate` per second after its burst; rate 0 is unlimited."""
    now = [0.0]
    b = TokenBucket(100.0, 10.0, clock=lambda: now[0])
    assert b.take(50) == 10 and b.take(5) == 0
    now[0] += 0.5
    assert b.take(1000) == 10  # capped at the burst
    assert TokenBucket(0, 0).take(7) == 7


def test_settings_validation() -> None:
    """Contradictory or empty settings are refused when built, with the reason in the message."""
    with pytest.raises(ValueError, match="tls"):
        MqttSettings(host="h", client_id="c", prefix="p", ca_file="/ca.pem")
    with pytest.raises(ValueError, match="cert_file and key_file"):
        MqttSettings(host="h", client_id="c", prefix="p", tls=True, cert_file="/c.pem")
    with pytest.raises(ValueError):
        RelaySettings(window=0)
    s = MqttSettings(host="h", client_id="c", prefix="p", password="secret")
    assert "secret" not in repr(s)
