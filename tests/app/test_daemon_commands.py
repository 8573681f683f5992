"""The daemon's command queue: a flood beyond its 32 places is answered `busy` at once, through a real Mosquitto
and the real outbox, and every request is answered exactly once."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from agent.app.command_queue import COMMAND_QUEUE_MAX, busy_response
from agent.commands import ErrorCode
from tests.app.daemon_rig import PREFIX, command, make_daemon, running
from tests.rig.broker import Broker, Collector

FLOOD = 60  # well beyond COMMAND_QUEUE_MAX, well below the client's inbound queue (256)


@pytest.mark.broker
def test_daemon_command_flood_answers_every_req_id_once(broker: Broker, tmp_path: Path) -> None:
    """While the commands thread is blocked, 60 commands get 32 places; the rest are answered busy at once, and
    after it unblocks every req_id has exactly one answer, ok or busy."""
    d = make_daemon(broker, tmp_path)
    answers = Collector(broker, f"{PREFIX}/cmd_resp/#")
    station = broker.client("station-flood")
    ids = ["block"] + [f"f-{i}" for i in range(FLOOD)]
    try:
        with running(d):
            with d._lock:  # set_camera needs this lock: the commands thread blocks inside the first command
                command(station, "set_camera", "block", {"camera": "cho", "enabled": True})
                for req_id in ids[1:]:
                    command(station, "status", req_id)
                least_busy = FLOOD - COMMAND_QUEUE_MAX  # 28, or 29 if `block` was still queued when the flood came
                assert answers.wait_for(lambda m: len(m) >= least_busy, 20), len(answers.messages)
                early = [json.loads(m.payload) for m in answers.messages]
                assert all(not b["ok"] and b["error"]["message"].startswith("busy") for b in early)
            assert answers.wait_for(lambda m: len(m) >= len(ids), 20), len(answers.messages)
            # A fence: queued after everything above and answered in outbox order, so any duplicate comes before it.
            command(station, "status", "fence")
            assert answers.wait_for(lambda m: any(json.loads(x.payload)["req_id"] == "fence" for x in m), 20)
    finally:
        answers.close()
        station.disconnect()
    bodies = [b for m in answers.messages if (b := json.loads(m.payload))["req_id"] != "fence"]
    per_id = Counter(b["req_id"] for b in bodies)
    assert per_id == Counter(ids)
    busy = [b for b in bodies if not b["ok"]]
    assert all(b["error"]["code"] == "unavailable" and b["error"]["message"].startswith("busy") for b in busy)
    assert len(busy) in (FLOOD - COMMAND_QUEUE_MAX, FLOOD - COMMAND_QUEUE_MAX + 1)
    assert {b["req_id"] for b in bodies if b["ok"]} >= {"block"}
    assert d.commands.counters["busy"] == len(busy)


def test_busy_response_keeps_req_id_or_the_request_error() -> None:
    """A well-formed request gets busy with its req_id; a malformed one gets its own error, as it would later."""
    ok = busy_response("status", b'{"req_id": "r-1"}', now=time.time(), waiting=32)
    assert ok.req_id == "r-1" and ok.error_code == ErrorCode.UNAVAILABLE and ok.error_message.startswith("busy")
    bad = busy_response("status", b"{", now=time.time(), waiting=32)
    assert bad.error_code == ErrorCode.BAD_JSON and not bad.ok
