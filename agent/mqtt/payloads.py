"""Every MQTT payload the agent sends is encoded here, and only here (docs/mqtt.md documents each field).

JSON objects, UTF-8, compact, with `"schema": "matthan/<name>/<version>"` as their first key: a consumer checks
the name and refuses a major version it does not know; fields may be added within a version, never removed or
changed in meaning. Times are UTC epoch seconds (floats, millisecond precision). Rows that travel through the
outbox are stored without their envelope; the relay stamps `msg_id`, `seq` and, for replayed backlog,
`"historical": true` into the object at send time (`stamp`), so the identity is the one the outbox committed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agent.models import CameraState, CameraStatus, EventKind, HealthSample, MotionEvent
from agent.mqtt.topics import Topics, ha_object_id

JPEG_MAGIC = b"\xff\xd8"
MOTION_ON, MOTION_OFF = b"ON", b"OFF"  # Home Assistant binary_sensor defaults

SCHEMAS = {
    "status": "matthan/status/1",
    "camera_status": "matthan/camera_status/1",
    "event": "matthan/event/1",
    "health": "matthan/health/1",
    "gap": "matthan/gap/1",
    "cmd_resp": "matthan/cmd_resp/1",
}


class PayloadError(ValueError):
    """A payload cannot be encoded or parsed; the message says what was wrong."""


def _ts(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _encode(name: str, body: Mapping[str, Any]) -> bytes:
    obj = {"schema": SCHEMAS[name], **body}
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


# -- agent -----------------------------------------------------------------------------------------------------
def agent_status(state: str, session: str, ts: float, *, version: str | None = None) -> bytes:
    """Retained on `status`. `session` changes on every connection, so an `offline` will from an older
    connection that arrives late can be recognised (its session is not the one of the last `online`)."""
    if state not in ("online", "offline"):
        raise PayloadError(f"agent state must be online or offline, not {state!r}")
    return _encode("status", {"state": state, "session": session, "ts": _ts(ts), "version": version})


def health(sample: HealthSample) -> bytes:
    """Periodic health. Absent sensors are null, never 0."""
    return _encode("health", {
        "ts": _ts(sample.ts), "version": sample.version, "boot_id": sample.boot_id,
        "uptime_s": round(sample.uptime_s, 1), "host": sample.host, "outbox": sample.outbox,
        "cameras": sample.cameras,
    })


def gap(info: Mapping[str, Any]) -> bytes:
    """What the outbox dropped when it was full (its own accounting, see agent/outbox)."""
    keys = ("reason", "dropped", "rows", "bytes", "first_seq", "last_seq", "first_ts", "last_ts")
    body = {k: info.get(k) for k in keys}
    body["first_ts"], body["last_ts"] = _ts(body["first_ts"]), _ts(body["last_ts"])
    return _encode("gap", body)


# -- cameras ---------------------------------------------------------------------------------------------------
def camera_status(status: CameraStatus) -> bytes:
    """Retained on `cameras/<id>/status`, published on change."""
    return _encode("camera_status", {
        "camera": status.camera_id,
        "state": str(status.state),
        "reason": str(status.reason),
        "message": status.message,
        "since": _ts(status.since),
        "last_frame_ts": _ts(status.last_frame_ts),
        "fps": None if status.fps_in is None else round(status.fps_in, 2),
        "fps_analysed": None if status.fps_analysed is None else round(status.fps_analysed, 2),
        "decode_mode": None if status.decode_mode is None else str(status.decode_mode),
    })


def camera_motion(on: bool) -> bytes:
    """Retained on `cameras/<id>/motion`: plain ON/OFF so Home Assistant needs no template."""
    return MOTION_ON if on else MOTION_OFF


# -- events ----------------------------------------------------------------------------------------------------
def motion_event(event: MotionEvent, *, snapshot_topic: str | None = None) -> bytes:
    """One start/update/end of a motion event (`msg_id`, `seq`, `historical` are stamped by the relay)."""
    return _encode("event", {
        "event_id": event.event_id,
        "type": str(event.kind),
        "camera": event.camera_id,
        "ts": _ts(event.ts),
        "start_ts": _ts(event.start_ts),
        "end_ts": _ts(event.end_ts),
        "score": round(event.peak_score, 4),
        "peak_ts": _ts(event.peak_ts),
        "boxes": {
            "union": event.union_box.as_list() if event.union_box else None,
            "peak": event.peak_box.as_list() if event.peak_box else None,
        },
        "zones": list(event.zones),
        "frames_analysed": event.frames_analysed,
        "snapshot": None if snapshot_topic is None else {"topic": snapshot_topic},
    })


def event_is_update(event: MotionEvent) -> bool:
    """Updates are evicted before start/end when the outbox is full."""
    return event.kind == EventKind.UPDATE


def snapshot(jpeg: bytes) -> bytes:
    """The JPEG itself, unchanged (identity travels as v5 user properties `msg_id` and `seq`)."""
    if not jpeg.startswith(JPEG_MAGIC):
        raise PayloadError("snapshot payload is not a JPEG (missing FF D8 start marker)")
    return jpeg


# -- commands --------------------------------------------------------------------------------------------------
def command_response(body: Mapping[str, Any]) -> bytes:
    """Answer on `cmd_resp/<name>`: `{"req_id", "ok", "result"}` or `{"req_id", "ok": false, "error"}`."""
    if "req_id" not in body or "ok" not in body:
        raise PayloadError("a command response needs req_id and ok")
    return _encode("cmd_resp", body)


def parse_station_ack(payload: bytes) -> int | None:
    """`{"seq": N}` from the station (retained on `ack`); None if the message is not a usable acknowledgement."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    seq = data.get("seq") if isinstance(data, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 else None


# -- the relay's envelope --------------------------------------------------------------------------------------
def stamp(payload: bytes, *, msg_id: str, seq: int, historical: bool) -> bytes:
    """Add the outbox identity to a stored JSON object without re-encoding it (cheap at replay rates).

    Non-JSON payloads (snapshots, ON/OFF) are returned unchanged; their identity goes in user properties.
    """
    if not (payload.startswith(b"{") and payload.endswith(b"}")):
        return payload
    extra = f'"msg_id":{json.dumps(msg_id)},"seq":{int(seq)}' + (',"historical":true' if historical else "")
    sep = b"," if len(payload) > 2 else b""
    return payload[:-1] + sep + extra.encode() + b"}"


# -- Home Assistant discovery ----------------------------------------------------------------------------------
def _device(agent_id: str, version: str | None) -> dict[str, Any]:
    return {"identifiers": [f"matthan_{ha_object_id(agent_id)}"], "name": f"Mắt Thần {agent_id}",
            "manufacturer": "Mắt Thần", "sw_version": version}


def _availability(topics: Topics) -> dict[str, Any]:
    return {"availability_topic": topics.status(), "availability_template": "{{ value_json.state }}",
            "payload_available": "online", "payload_not_available": "offline"}


def _ha(topics: Topics, component: str, node: str, obj: str, body: dict[str, Any]) -> tuple[str, bytes]:
    return topics.ha_config(component, node, obj), json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def ha_camera_configs(topics: Topics, agent_id: str, camera_id: str, *, name: str | None = None,
                      version: str | None = None) -> list[tuple[str, bytes]]:
    """Discovery for one camera: motion binary_sensor, status and fps sensors (retained; empty payload removes)."""
    node, label = ha_object_id(f"matthan_{agent_id}"), name or camera_id
    uid = ha_object_id(f"matthan_{agent_id}_{camera_id}")
    common = {"device": _device(agent_id, version), **_availability(topics)}
    return [
        _ha(topics, "binary_sensor", node, f"{uid}_motion", {
            "name": f"{label} motion", "unique_id": f"{uid}_motion", "device_class": "motion",
            "state_topic": topics.camera_motion(camera_id), "payload_on": "ON", "payload_off": "OFF", **common}),
        _ha(topics, "sensor", node, f"{uid}_status", {
            "name": f"{label} status", "unique_id": f"{uid}_status", "state_topic": topics.camera_status(camera_id),
            "value_template": "{{ value_json.state }}", "json_attributes_topic": topics.camera_status(camera_id),
            "device_class": "enum", "options": [str(s) for s in CameraState], **common}),
        _ha(topics, "sensor", node, f"{uid}_fps", {
            "name": f"{label} fps", "unique_id": f"{uid}_fps", "state_topic": topics.camera_status(camera_id),
            "value_template": "{{ value_json.fps }}", "unit_of_measurement": "fps",
            "state_class": "measurement", **common}),
    ]


def ha_agent_configs(topics: Topics, agent_id: str, *, version: str | None = None) -> list[tuple[str, bytes]]:
    """Discovery for the agent: SoC temperature, CPU % and outbox depth, read from the health payload."""
    node = ha_object_id(f"matthan_{agent_id}")
    common = {"device": _device(agent_id, version), "state_topic": topics.health(), "state_class": "measurement",
              **_availability(topics)}
    return [
        _ha(topics, "sensor", node, f"{node}_temperature", {
            "name": "SoC temperature", "unique_id": f"{node}_temperature", "device_class": "temperature",
            "unit_of_measurement": "°C", "value_template": "{{ value_json.host.temperature_c }}", **common}),
        _ha(topics, "sensor", node, f"{node}_cpu", {
            "name": "CPU", "unique_id": f"{node}_cpu", "unit_of_measurement": "%",
            "value_template": "{{ value_json.host.cpu_pct }}", **common}),
        _ha(topics, "sensor", node, f"{node}_outbox_depth", {
            "name": "Outbox depth", "unique_id": f"{node}_outbox_depth", "unit_of_measurement": "messages",
            "value_template": "{{ value_json.outbox.depth }}", **common}),
    ]
