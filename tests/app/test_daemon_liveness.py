"""Liveness behind the systemd watchdog: the daemon is healthy only while its MQTT connection thread runs and makes
progress; and the client's bounded event queue, when it overflows, forces a reconnect instead of growing."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent.mqtt import MqttClient
from agent.mqtt.events import Connected, Disconnected, PubAck
from tests.app.daemon_rig import make_daemon, running, wait_until
from tests.mqtt.harness import mqtt_settings
from tests.rig.broker import Broker

pytestmark = pytest.mark.broker

HANG_LIMIT_S = 30.0  # the hung hook gives up after this, so a failing test never leaves a thread stuck for good
STILL_WINDOW_S = 1.5  # > 2 supervise turns (0.5 s each): a live connection thread bumps its heartbeat in this time


def test_daemon_healthy_needs_a_live_mqtt_connection_thread(broker: Broker, tmp_path: Path) -> None:
    """Healthy once running; not healthy when the connection thread hangs past its limit or has stopped."""
    d = make_daemon(broker, tmp_path)
    hang, entered = threading.Event(), threading.Event()
    hung_once: list[bool] = []

    def hook(_session: str) -> None:  # runs on the connection thread after a connect
        if not hung_once:
            hung_once.append(True)
            entered.set()
            hang.wait(HANG_LIMIT_S)

    d.client.on_connected(hook)
    assert not d._healthy()  # nothing started yet
    with running(d):
        assert entered.wait(15)
        beat = d.client.heartbeat
        hang.wait(STILL_WINDOW_S)  # observation window: the hung thread must not beat during it
        assert d.client.heartbeat == beat, "a hung connection thread kept beating"
        limit = d.client.heartbeat_limit_s
        assert d._healthy(now=beat + limit - 1) and not d._healthy(now=beat + limit + 1)
        hang.set()
        wait_until(lambda: d.client.heartbeat > beat, 10, "the connection thread to beat again")
        assert d._healthy()
        d.client.stop(timeout=5)  # the connection thread ends; the relay still runs
        assert not d.client.alive and d.relay.alive
        assert not d._healthy()


def test_client_heartbeat_limit_covers_backoff_and_connect_timeouts(broker: Broker) -> None:
    """The hang limit is longer than one backoff wait plus two connect timeouts (never flags a slow reconnect)."""
    c = MqttClient(mqtt_settings(broker, backoff_max_s=60.0, connect_timeout_s=10.0))
    assert c.heartbeat_limit_s > 60.0 + 2 * 10.0
    assert not c.healthy()  # not started: no connection thread


def test_client_events_overflow_forces_reconnect(broker: Broker) -> None:
    """PUBACKs that find the relay's queue full are counted and the connection is replaced (so the relay re-sends)."""
    events_max = 8
    c = MqttClient(mqtt_settings(broker), events_max=events_max)
    c.start()
    try:
        wait_until(lambda: c.connected, 10, "the first connection")
        first = c.session
        for i in range(4 * events_max):
            c.publish(f"{c.topics.prefix}/t/{i}", b"x", qos=1)
        wait_until(lambda: c.counters["events_dropped"] > 0, 10, "a PUBACK dropped on a full queue")
        assert c.events.qsize() <= events_max
        seen: list[Any] = []

        def reconnected() -> bool:  # the test drains the queue as the relay would
            while not c.events.empty():
                seen.append(c.events.get_nowait())
            return any(isinstance(e, Connected) and e.session != first for e in seen)

        wait_until(reconnected, 15, "a new connection after the overflow")
        kinds = [type(e) for e in seen]
        assert Disconnected in kinds and kinds.index(Disconnected) < len(kinds) - 1
        assert all(isinstance(e, PubAck | Disconnected | Connected) for e in seen)
        assert c.counters["connects"] >= 2 and c.healthy()
    finally:
        c.stop(timeout=5)


def test_client_stop_keeps_to_its_timeout_on_a_hung_broker(broker: Broker) -> None:
    """With the broker frozen (no PUBACK for `offline`), stop() still returns within its timeout."""
    c = MqttClient(mqtt_settings(broker))
    c.start()
    try:
        wait_until(lambda: c.connected, 10, "the connection")
        broker.hang()
        t0 = time.monotonic()
        c.stop(timeout=1.0)
        assert time.monotonic() - t0 < 1.0 + 0.3  # 0.3 s: scheduling slack on a shared 2-core box
    finally:
        broker.resume()
