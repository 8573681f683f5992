"""No event lost across broker outages and publisher crashes (issue 6, "Done when"), with a real Mosquitto.

The station is a persistent-session QoS 1 subscriber. Events are produced at 10/s while the broker is stopped
(SIGTERM) for 60 s, killed (SIGKILL) mid-stream, or hung (SIGSTOP) for 30 s; afterwards every produced msg_id must
have arrived, with at most 1 % duplicates. The 10-minute outage runs only with MATTHAN_LONG=1 (it is also `slow`).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.mqtt import RelaySettings
from tests.mqtt.harness import PREFIX, Agent, Producer, duplicate_rate, event_ids, events, wait_all
from tests.rig.broker import Broker, Collector

pytestmark = pytest.mark.broker
REPO = Path(__file__).resolve().parents[2]


def _station(broker: Broker) -> Collector:
    return Collector(broker, f"{PREFIX}/events/#", client_id="station", session_expiry=86_400)


def _check_status_sessions(status: Collector, current: str) -> None:
    """The station's rule works: the last `online` carries the live session, and any `offline` after it comes from
    a stale connection (a will the hung broker published late), so the station can ignore it."""
    msgs = [json.loads(m.payload) for m in list(status.messages)]
    last_online = max(i for i, m in enumerate(msgs) if m["state"] == "online")
    assert msgs[last_online]["session"] == current
    assert all(m["session"] != current for m in msgs[last_online + 1:] if m["state"] == "offline")


def _outage(broker: Broker, tmp_path: Path, *, before_s: float, outage: Callable[[], None], after_s: float,
            relay: RelaySettings | None = None, station_ack: bool = False) -> None:
    col = _station(broker)
    status = Collector(broker, f"{PREFIX}/status")
    agent = Agent.make(broker, tmp_path, relay).start()
    assert agent.wait_connected()
    acker_stop = threading.Event()
    producer = Producer(agent.outbox, agent.topics, rate=10.0).start()

    def acker() -> None:
        """The station's acknowledgement: the highest seq below which nothing is missing, every 0.2 s."""
        last = 0
        while not acker_stop.wait(0.2):
            produced = [int(m.rsplit("-", 1)[1]) for m in list(producer.produced)]
            if not produced:
                continue
            got = {e["seq"] for e in events(col)}
            hw = produced[0] - 1
            for s in produced:
                if s not in got:
                    break
                hw = s
            if hw > last:
                col.client.publish(agent.topics.ack(), json.dumps({"seq": hw}).encode(), qos=1, retain=True)
                last = hw

    ack_thread = threading.Thread(target=acker, daemon=True)
    if station_ack:
        ack_thread.start()
    try:
        time.sleep(before_s)  # the scenario's timeline: events flow normally for a while before the outage
        outage()
        time.sleep(after_s)  # and keep flowing after it
        produced = producer.stop()
        assert wait_all(col, produced, 60), (f"missing {len(set(produced) - set(event_ids(col)))} of "
                                             f"{len(produced)}; broker log:\n{broker.log_tail()}")
        total, dups, rate = duplicate_rate(col)
        print(f"outage result: produced={len(produced)} received={total} duplicates={dups} ({rate:.2%}) "
              f"client={agent.client.counters} relay={agent.relay.stats()}")
        assert rate <= 0.01, f"{dups} duplicates in {total} messages"
        assert set(event_ids(col)) == set(produced)
        _check_status_sessions(status, agent.client.session)
    finally:
        acker_stop.set()
        producer.stop()
        agent.stop()
        col.close()
        status.close()


def test_outage_broker_stopped_60s(broker: Broker, tmp_path: Path) -> None:
    """Broker stopped (SIGTERM) for 60 s while events are produced at 10/s: every event arrives, ≤ 1 % dups."""
    def outage() -> None:
        broker.stop()
        time.sleep(60)  # the outage itself
        broker.start()

    _outage(broker, tmp_path, before_s=5, outage=outage, after_s=5)


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.skipif(os.environ.get("MATTHAN_LONG") != "1", reason="10-minute outage: set MATTHAN_LONG=1 to run")
def test_outage_broker_stopped_10min(broker: Broker, tmp_path: Path) -> None:
    """Broker stopped for 10 minutes at 10 events/s: all 6,000+ events arrive after it comes back."""
    def outage() -> None:
        broker.stop()
        time.sleep(600)  # the outage itself
        broker.start()

    _outage(broker, tmp_path, before_s=5, outage=outage, after_s=10)


def test_outage_broker_killed_midstream(broker_factory: Callable[..., Broker], tmp_path: Path) -> None:
    """Broker SIGKILLed mid-stream and restarted: with the station's acknowledgement nothing is lost."""
    # The broker saves its state on every change, as a station's broker should; what it acknowledged but had not
    # yet delivered is covered by the station acknowledgement (rows above the station's seq are sent again).
    b = broker_factory("anonymous", extra_config="autosave_on_changes true")

    def outage() -> None:
        b.crash()
        time.sleep(3)  # down for a moment, as after a power cut at the station
        b.start()

    _outage(b, tmp_path, before_s=10, outage=outage, after_s=15, relay=RelaySettings(station_ack=True),
            station_ack=True)


def test_outage_broker_hung_30s(broker: Broker, tmp_path: Path) -> None:
    """Broker hung (SIGSTOP) for 30 s then resumed: every event arrives, ≤ 1 % duplicates."""
    def outage() -> None:
        broker.hang()
        time.sleep(30)  # the hang itself
        broker.resume()

    _outage(broker, tmp_path, before_s=10, outage=outage, after_s=20)  # ≥ 600 events: 1 % is 6 messages


def _read_log(path: Path) -> list[tuple[str, str, float]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 3:  # a line cut by SIGKILL mid-write is incomplete: its put may or may not be durable
            out.append((parts[0], parts[1], float(parts[2])))
    return out


def test_outage_publisher_killed_20_times(broker: Broker, tmp_path: Path) -> None:
    """The publishing process is SIGKILLed 20 times at random moments: no logged event is lost, per-camera order by
    seq matches production order, and each kill leaves a retained offline for the killed session."""
    col = Collector(broker, f"{PREFIX}/#", client_id="station", session_expiry=86_400)
    log = tmp_path / "produced.log"
    cmd = [sys.executable, "-m", "tests.mqtt.publisher", "--port", str(broker.port), "--state", str(tmp_path),
           "--log", str(log), "--rate", "40"]
    rnd = random.Random(6)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        for _ in range(20):
            p = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.DEVNULL)
            time.sleep(rnd.uniform(0.3, 1.8))  # the random moment of the kill
            p.send_signal(signal.SIGKILL)
            p.wait(10)
        drain = subprocess.run([*cmd, "--drain"], cwd=REPO, env=env, timeout=90, capture_output=True, text=True)
        assert drain.returncode == 0, drain.stderr
        produced = _read_log(log)
        assert len(produced) > 100, "the publisher should have produced events between kills"
        assert wait_all(col, [m for m, _, _ in produced], 30), "events lost across publisher kills"
        got = {e["msg_id"]: e for e in events(col)}
        for cam in ("cam1", "cam2"):
            mine = sorted((got[m]["seq"], got[m]["ts"]) for m, c, _ in produced if c == cam)
            assert [ts for _, ts in mine] == sorted(ts for _, ts in mine), f"{cam}: seq order != production order"
        statuses = [json.loads(m.payload) for m in list(col.messages) if m.topic == f"{PREFIX}/status"]
        online = {s["session"] for s in statuses if s["state"] == "online"}
        offline = {s["session"] for s in statuses if s["state"] == "offline"}
        assert len(online) >= 15 and online <= offline, "every connection's session must end with an offline"
    finally:
        col.close()
