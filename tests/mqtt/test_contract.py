"""docs/mqtt.md is the contract: every topic builder and payload encoder is documented, and every JSON payload has
exactly the fields its table lists."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from agent.models import Box, CameraState, CameraStatus, DecodeMode, EventKind, HealthSample, MotionEvent, StatusReason
from agent.mqtt import payloads
from agent.mqtt.topics import Topics
from agent.outbox import OutboxStats

DOC = Path(__file__).resolve().parents[2] / "docs" / "mqtt.md"
STAMPED = {"msg_id", "seq", "historical"}


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _tables() -> dict[str, set[str]]:
    """schema name -> set of top-level fields in the table under the heading that names it."""
    out: dict[str, set[str]] = {}
    current = None
    for line in _doc().splitlines():
        if line.startswith("### "):
            m = re.search(r"schema `(matthan/[a-z_]+/\d+)`", line)
            current = m.group(1) if m else None
            if current:
                out[current] = set()
        elif current and line.startswith("| `"):
            out[current].add(line.split("`")[1])
    return out


def _event(kind: EventKind = EventKind.END) -> MotionEvent:
    return MotionEvent(event_id="cam1-17", camera_id="cam1", kind=kind, start_ts=1.5, ts=2.5, end_ts=2.5,
                       peak_score=0.3, peak_ts=2.0, union_box=Box(0.1, 0.2, 0.3, 0.4), peak_box=Box(0.1, 0.2, 0.1, 0.1),
                       zones=("cổng",), frames_analysed=12)


def _samples() -> dict[str, bytes]:
    status = CameraStatus("cam1", CameraState.OFFLINE, StatusReason.AUTH_FAILED, "mật khẩu sai", 10.0, 9.0, 5.0, 4.9,
                          DecodeMode.FULL)
    health = HealthSample(ts=3.0, version="0.1.0", boot_id="b", uptime_s=12.0, host={"cpu_pct": 3.0},
                          outbox=OutboxStats(0, 0, None, 0, 0).as_dict(), cameras={})
    gap = {"reason": "outbox_full", "dropped": {"health": 2}, "rows": 2, "bytes": 300, "first_seq": 5,
           "last_seq": 6, "first_ts": 1.0, "last_ts": 2.0}
    stamp = {"msg_id": "a-1-5", "seq": 5, "historical": True}
    return {
        "matthan/status/1": payloads.agent_status("online", "s1", 1.0, version="0.1.0"),
        "matthan/camera_status/1": payloads.camera_status(status),
        "matthan/event/1": payloads.stamp(payloads.motion_event(_event(), snapshot_topic="x/snapshot"), **stamp),
        "matthan/health/1": payloads.stamp(payloads.health(health), **stamp),
        "matthan/gap/1": payloads.stamp(payloads.gap(gap), **stamp),
        "matthan/cmd_resp/1": payloads.stamp(payloads.command_response(
            {"req_id": "r1", "ok": False, "error": {"code": "expired", "message": "late"}}), **stamp),
    }


def test_contract_every_topic_builder_documented() -> None:
    """Each public method of Topics is named in docs/mqtt.md as `Topics.<name>(`."""
    doc = _doc()
    names = [n for n, _ in inspect.getmembers(Topics, inspect.isfunction) if not n.startswith("_")]
    assert names, "no topic builders found"
    missing = [n for n in names if f"Topics.{n}(" not in doc]
    assert not missing, f"undocumented topic builders: {missing}"


def test_contract_every_payload_encoder_documented() -> None:
    """Each public function of payloads is named in docs/mqtt.md as `payloads.<name>(`, except internal helpers."""
    doc = _doc()
    internal = {"event_is_update"}
    names = [n for n, f in inspect.getmembers(payloads, inspect.isfunction)
             if not n.startswith("_") and f.__module__ == payloads.__name__ and n not in internal]
    missing = [n for n in names if f"payloads.{n}(" not in doc]
    assert not missing, f"undocumented payload functions: {missing}"


def test_contract_every_schema_has_a_table() -> None:
    """Every schema string the encoder uses has a field table in the document, and vice versa."""
    assert set(_tables()) == set(payloads.SCHEMAS.values())


@pytest.mark.parametrize("schema", sorted(payloads.SCHEMAS.values()))
def test_contract_payload_fields_match_doc(schema: str) -> None:
    """An encoded payload has every documented top-level field and nothing undocumented."""
    body = json.loads(_samples()[schema])
    assert body["schema"] == schema and next(iter(body)) == "schema"
    documented = _tables()[schema]
    if schema == "matthan/cmd_resp/1":  # result and error are alternatives
        documented = documented - {"result"}
    if schema == "matthan/camera_status/1" or schema == "matthan/status/1":
        assert not (STAMPED & documented), "retained state topics do not go through the outbox"
    assert set(body) == documented


def test_contract_topics_appear_in_doc() -> None:
    """Every topic pattern the builders produce is listed in the topic table."""
    t = Topics("<p>")
    doc = _doc()
    for topic in (t.status(), t.health(), t.gap(), t.ack(), t.camera_status("<camera>"), t.camera_motion("<camera>"),
                  t.camera_snapshot("<camera>"),
                  t.events_motion(), t.event_snapshot("<event_id>"), t.cmd("<name>"), t.cmd_resp("<name>"),
                  t.ha_status()):
        assert f"`{topic}`" in doc, topic


def test_contract_status_reasons_documented() -> None:
    """Every StatusReason value is listed under camera status."""
    doc = _doc()
    assert all(f"`{r.value}`" in doc for r in StatusReason)
