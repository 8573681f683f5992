"""Relay and client against a real Mosquitto: identity, order, replay, dead letters, status/will, TLS, commands."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.models import EventKind, HealthSample, MotionEvent
from agent.mqtt import InboundMessage, RelaySettings, records
from agent.outbox import Priority, Record
from tests.mqtt.harness import PREFIX, Agent, event_ids, events, wait_all
from tests.rig.broker import Broker, Collector

pytestmark = pytest.mark.broker


def _event(n: int, cam: str = "cam1") -> MotionEvent:
    return MotionEvent(f"{cam}-{n}", cam, EventKind.START, time.time(), time.time())


def _status(col: Collector) -> list[dict[str, object]]:
    return [json.loads(m.payload) for m in list(col.messages) if m.topic == f"{PREFIX}/status"]


def test_relay_delivers_in_seq_order_with_identity(broker: Broker, tmp_path: Path) -> None:
    """Events reach the station once each, in seq order, stamped with msg_id and seq; the outbox empties."""
    col = Collector(broker, f"{PREFIX}/#")
    agent = Agent.make(broker, tmp_path).start()
    try:
        assert agent.wait_connected()
        ids = [agent.outbox.put_many(records.motion_event(agent.topics, _event(i)))[0] for i in range(50)]
        assert wait_all(col, ids, 15)
        got = events(col)
        assert [e["msg_id"] for e in got] == ids
        assert [e["seq"] for e in got] == sorted(e["seq"] for e in got)
        assert all("historical" not in e for e in got)
        deadline = time.monotonic() + 5
        while agent.outbox.stats().depth and time.monotonic() < deadline:
            time.sleep(0.05)  # acks are flushed by the relay thread; poll with a deadline
        assert agent.outbox.stats().depth == 0
    finally:
        agent.stop()
        col.close()


def test_relay_backlog_replayed_historical_live_first(broker: Broker, tmp_path: Path) -> None:
    """A backlog stored while offline is paced and marked historical; a live event overtakes it (< 1 s)."""
    col = Collector(broker, f"{PREFIX}/events/#")
    agent = Agent.make(broker, tmp_path, RelaySettings(replay_rate=200))
    backlog = [agent.outbox.put_many(records.motion_event(agent.topics, _event(i)))[0] for i in range(400)]
    agent.start()
    try:
        assert col.wait_for(lambda m: len(m) >= 20, 10)
        t0 = time.monotonic()
        live = agent.outbox.put_many(records.motion_event(agent.topics, _event(999, "cam2")))[0]
        assert wait_all(col, [live], 5)
        live_latency = time.monotonic() - t0
        ids = event_ids(col)
        assert ids.index(live) < len(backlog) - 1, "the live event should overtake the paced backlog"
        assert wait_all(col, backlog, 20)
        by_id = {e["msg_id"]: e for e in events(col)}
        assert all(by_id[m].get("historical") is True for m in backlog)
        assert "historical" not in by_id[live] and live_latency < 1.0
        hist_order = [by_id[m]["seq"] for m in event_ids(col) if m != live]
        assert hist_order == sorted(hist_order)
    finally:
        agent.stop()
        col.close()


def test_relay_acl_denied_goes_to_dead_letter(broker_factory: Callable[..., Broker], tmp_path: Path) -> None:
    """A topic the ACL denies gets PUBACK 0x87: rows go to dead-letter, are counted, nothing is deleted as sent."""
    acl = (f"user agent\ntopic readwrite {PREFIX}/status\ntopic readwrite {PREFIX}/health\n"
           f"topic read {PREFIX}/#\n\nuser station\ntopic readwrite #\n")
    b = broker_factory("auth", acl=acl)
    col = Collector(b, f"{PREFIX}/#")
    agent = Agent.make(b, tmp_path).start()
    try:
        ids = [agent.outbox.put_many(records.motion_event(agent.topics, _event(i)))[0] for i in range(5)]
        sample = HealthSample(ts=time.time(), version="t", boot_id="b", uptime_s=1.0)
        agent.outbox.put(records.health(agent.topics, sample))
        assert col.wait_for(lambda m: any(x.topic.endswith("/health") for x in m), 10)
        deadline = time.monotonic() + 10
        while (agent.outbox.stats().dead_letters < 5 or agent.outbox.stats().depth) and time.monotonic() < deadline:
            time.sleep(0.05)  # dead-lettering happens on the relay thread; poll with a deadline
        st = agent.outbox.stats()
        assert st.dead_letters == 5 and st.depth == 0
        assert {d[0] for d in agent.outbox.dead_letters()} == set(ids)
        assert all("0x87" in d[2] for d in agent.outbox.dead_letters())
        assert agent.relay.stats()["dead_lettered"] == 5 and event_ids(col) == []
    finally:
        agent.stop()
        col.close()


def test_relay_no_subscribers_is_success(broker: Broker, tmp_path: Path) -> None:
    """With nobody subscribed (PUBACK 0x10) rows are still deleted as delivered, not dead-lettered."""
    agent = Agent.make(broker, tmp_path).start()
    try:
        agent.outbox.put_many([Record(f"{PREFIX}/health", b"{}", Priority.HEALTH) for _ in range(10)])
        deadline = time.monotonic() + 10
        while agent.relay.stats()["acked"] < 10 and time.monotonic() < deadline:
            time.sleep(0.05)  # poll the relay's counters with a deadline
        assert agent.relay.stats()["acked"] == 10 and agent.outbox.stats().dead_letters == 0
    finally:
        agent.stop()


def test_client_status_online_per_session_offline_on_stop(broker: Broker, tmp_path: Path) -> None:
    """Each connection publishes a retained online with a new session; a clean stop publishes offline for it."""
    col = Collector(broker, f"{PREFIX}/status")
    agent = Agent.make(broker, tmp_path).start()
    try:
        assert col.wait_for(lambda m: len(m) >= 1, 10)
        first = _status(col)[-1]
        assert first["state"] == "online" and first["schema"] == "matthan/status/1"
        broker.restart()
        assert col.wait_for(lambda m: any(json.loads(x.payload)["session"] != first["session"]
                                          and json.loads(x.payload)["state"] == "online" for x in m), 20)
        second = [s for s in _status(col) if s["state"] == "online"][-1]
    finally:
        agent.stop()
    assert col.wait_for(lambda m: json.loads(m[-1].payload)["state"] == "offline", 10)
    assert _status(col)[-1]["session"] == second["session"]
    col.close()
    late = Collector(broker, f"{PREFIX}/status")  # retained: a station that connects later sees offline
    try:
        assert late.wait_for(lambda m: len(m) >= 1, 10) and late.messages[0].retain
        assert json.loads(late.messages[0].payload)["state"] == "offline"
    finally:
        late.close()


def test_client_tls_verified_and_wrong_ca_refused(tls_broker: Broker, tmp_path: Path, tls_material: object) -> None:
    """TLS with the right CA connects and delivers; with another CA the client never connects (and keeps trying)."""
    col = Collector(tls_broker, f"{PREFIX}/events/#")
    good = Agent.make(tls_broker, tmp_path / "good").start()
    bad = Agent.make(tls_broker, tmp_path / "bad", ca_file=str(tls_material.other_ca_cert))  # type: ignore[attr-defined]
    bad.start()
    try:
        ids = good.outbox.put_many(records.motion_event(good.topics, _event(1)))
        assert wait_all(col, ids, 10)
        deadline = time.monotonic() + 10
        while bad.client.counters["connect_failures"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # poll the client's counters with a deadline
        assert bad.client.counters["connect_failures"] >= 2 and not bad.client.connected
    finally:
        good.stop()
        bad.stop()
        col.close()


def test_client_wrong_password_refused(auth_broker: Broker, tmp_path: Path) -> None:
    """A wrong password is refused by the broker; the client reports it and does not pretend to be connected."""
    agent = Agent.make(auth_broker, tmp_path, password="wrong").start()
    try:
        deadline = time.monotonic() + 10
        while agent.client.counters["connect_failures"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # poll the client's counters with a deadline
        assert agent.client.counters["connect_failures"] >= 1 and not agent.client.connected
    finally:
        agent.stop()


def test_client_commands_with_response_topic(broker: Broker, tmp_path: Path) -> None:
    """A command reaches the handler with v5 response topic and correlation data; the answer goes back there."""
    agent = Agent.make(broker, tmp_path)
    got: list[InboundMessage] = []
    seen = threading.Event()

    def handler(msg: InboundMessage) -> None:
        got.append(msg)
        name = agent.topics.cmd_name(msg.topic)
        assert name is not None
        body = {"req_id": json.loads(msg.payload)["req_id"], "ok": True, "result": {"n": 1}}
        agent.outbox.put(records.command_response(agent.topics, name, body, response_topic=msg.response_topic,
                                                  correlation=msg.correlation_data))
        seen.set()

    agent.client.on_command(handler)
    agent.start()
    col = Collector(broker, "station/replies/#")
    station = broker.client("station-cmd", user="station")
    try:
        assert agent.wait_connected()
        deadline = time.monotonic() + 10
        while not agent.client.subscribed and time.monotonic() < deadline:
            time.sleep(0.02)  # wait for the SUBACK before sending the command; poll with a deadline
        assert agent.client.subscribed
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = "station/replies/1"
        props.CorrelationData = b"corr-42"
        station.publish(agent.topics.cmd("status"), b'{"req_id": "r1"}', qos=1, properties=props)
        assert seen.wait(10)
        assert got[0].response_topic == "station/replies/1" and got[0].correlation_data == b"corr-42"
        assert not got[0].retain
        assert col.wait_for(lambda m: len(m) >= 1, 10)
        reply = col.messages[0]
        assert json.loads(reply.payload)["req_id"] == "r1"
        assert reply.properties.CorrelationData == b"corr-42"
    finally:
        station.disconnect()
        station.loop_stop()
        agent.stop()
        col.close()


def test_relay_station_ack_keeps_until_confirmed(broker: Broker, tmp_path: Path) -> None:
    """In station-ack mode acknowledged rows stay until the station's retained seq covers them, and are resent
    after a reconnect while uncovered."""
    col = Collector(broker, f"{PREFIX}/events/#", client_id="station", session_expiry=3600)
    agent = Agent.make(broker, tmp_path, RelaySettings(station_ack=True)).start()
    try:
        assert agent.wait_connected()
        ids = [agent.outbox.put_many(records.motion_event(agent.topics, _event(i)))[0] for i in range(10)]
        assert wait_all(col, ids, 10)
        deadline = time.monotonic() + 5
        while agent.outbox.stats().unconfirmed < 10 and time.monotonic() < deadline:
            time.sleep(0.05)  # PUBACKs are booked by the relay thread; poll with a deadline
        assert agent.outbox.stats().unconfirmed == 10
        seqs = sorted(e["seq"] for e in events(col))
        col.client.publish(agent.topics.ack(), json.dumps({"seq": seqs[5]}).encode(), qos=1, retain=True)
        deadline = time.monotonic() + 5
        while agent.outbox.stats().depth > 4 and time.monotonic() < deadline:
            time.sleep(0.05)  # the ack arrives on the inbound thread; poll with a deadline
        assert agent.outbox.stats().depth == 4
        broker.restart()
        assert col.wait_for(lambda m: len(m) >= 14, 20)
        assert sorted(event_ids(col)[10:]) == sorted(ids[6:])
    finally:
        agent.stop()
        col.close()


def test_client_state_republished_after_reconnect(broker_factory: Callable[..., Broker], tmp_path: Path) -> None:
    """Retained state set once is re-published on every connect (a broker without persistence forgets it), and
    on_connected hooks run with the new session."""
    b = broker_factory("anonymous", persistence=False)
    agent = Agent.make(b, tmp_path)
    sessions: list[str] = []
    agent.client.on_connected(sessions.append)
    agent.start()
    topic = agent.topics.camera_motion("cam1")
    try:
        assert agent.wait_connected()
        agent.client.publish_state(topic, b"ON")
        b.restart()
        deadline = time.monotonic() + 20
        while len(sessions) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the reconnect is driven by the client's own backoff; poll with a deadline
        assert len(sessions) == 2 and sessions[0] != sessions[1]
        late = Collector(b, topic)
        try:
            assert late.wait_for(lambda m: len(m) >= 1, 10)
            assert late.messages[0].payload == b"ON" and late.messages[0].retain
        finally:
            late.close()
    finally:
        agent.stop()


def test_client_watchdog_drops_unacknowledging_connection(broker: Broker, tmp_path: Path) -> None:
    """With a long keepalive, a hung broker is noticed by the watchdog (no PUBACK for stall_kick_s) and a new client
    is created; after the broker resumes, the event is delivered."""
    col = Collector(broker, f"{PREFIX}/events/#", client_id="station", session_expiry=3600)
    agent = Agent.make(broker, tmp_path, keepalive_s=60, stall_kick_s=2.0).start()
    try:
        assert agent.wait_connected()
        broker.hang()
        ids = agent.outbox.put_many(records.motion_event(agent.topics, _event(1)))
        deadline = time.monotonic() + 10
        while agent.client.counters["watchdog_kicks"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # poll the client's counters with a deadline
        assert agent.client.counters["watchdog_kicks"] >= 1
        broker.resume()
        assert wait_all(col, ids, 20)
    finally:
        broker.resume()
        agent.stop()
        col.close()


def test_client_tls_client_certificate(broker_factory: Callable[..., Broker], tmp_path: Path,
                                       tls_material: object) -> None:
    """A broker that requires client certificates accepts the agent configured with cert_file/key_file."""
    b = broker_factory("tls", require_client_cert=True)
    col = Collector(b, f"{PREFIX}/events/#")
    agent = Agent.make(b, tmp_path, cert_file=str(tls_material.client_cert),  # type: ignore[attr-defined]
                       key_file=str(tls_material.client_key)).start()  # type: ignore[attr-defined]
    try:
        assert agent.wait_connected()
        ids = agent.outbox.put_many(records.motion_event(agent.topics, _event(1)))
        assert wait_all(col, ids, 10)
    finally:
        agent.stop()
        col.close()


def test_relay_unpublishable_row_dead_lettered(broker: Broker, tmp_path: Path) -> None:
    """A stored row paho refuses to publish (a wildcard topic, e.g. from a damaged row) is dead-lettered and the
    relay carries on with the next row instead of dying."""
    import sqlite3

    col = Collector(broker, f"{PREFIX}/events/#")
    agent = Agent.make(broker, tmp_path)
    bad = agent.outbox.put_many(records.motion_event(agent.topics, _event(1)))[0]
    good = agent.outbox.put_many(records.motion_event(agent.topics, _event(2)))[0]
    with sqlite3.connect(tmp_path / "outbox.sqlite3") as conn:
        conn.execute("UPDATE outbox SET topic = 'x/+/y' WHERE seq = ?", (int(bad.rsplit("-", 1)[1]),))
    agent.start()
    try:
        assert wait_all(col, [good], 10)
        deadline = time.monotonic() + 5
        while agent.outbox.stats().dead_letters < 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # dead-lettering is booked by the relay thread; poll with a deadline
        assert agent.outbox.dead_letters()[0][0] == bad and agent.relay.alive
    finally:
        agent.stop()
        col.close()


def test_client_survives_unexpected_error_in_connect(broker: Broker, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected exception inside a connection attempt is logged and counted; the client tries again."""
    from agent.mqtt.client import MqttClient

    real = MqttClient._connect
    calls = {"n": 0}

    def flaky(self: MqttClient, *args: object) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated paho bug")
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(MqttClient, "_connect", flaky)
    agent = Agent.make(broker, tmp_path).start()
    try:
        assert agent.wait_connected()
        assert agent.client.counters["manager_errors"] == 1 and agent.client.alive
    finally:
        agent.stop()


def test_relay_replayed_retained_state_does_not_overwrite_live(broker: Broker, tmp_path: Path) -> None:
    """A retained motion ON replayed from the backlog after a live OFF arrives without retain: the broker keeps OFF."""
    agent = Agent.make(broker, tmp_path, RelaySettings(replay_rate=50))
    topic = agent.topics.camera_motion("cam1")
    agent.outbox.put_many([Record(f"{PREFIX}/health", b"{}", Priority.HEALTH) for _ in range(30)])
    agent.outbox.put(Record(topic, b"ON", Priority.EVENT, retain=True))
    col = Collector(broker, topic)
    agent.start()
    try:
        assert agent.wait_connected()
        agent.outbox.put(Record(topic, b"OFF", Priority.EVENT, retain=True))
        assert col.wait_for(lambda m: [x.payload for x in m] == [b"OFF", b"ON"], 10), [x.payload for x in col.messages]
        late = Collector(broker, topic)
        try:
            assert late.wait_for(lambda m: len(m) >= 1, 10)
            assert late.messages[0].payload == b"OFF" and late.messages[0].retain
        finally:
            late.close()
    finally:
        agent.stop()
        col.close()


def test_client_outage_logged_once_and_recovery_line(broker: Broker, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """A broker that stays down gives one warning (not one per attempt) and one line when the link comes back."""
    import logging

    agent = Agent.make(broker, tmp_path).start()
    try:
        assert agent.wait_connected()
        with caplog.at_level(logging.DEBUG, logger="agent.mqtt.client"):
            broker.stop()
            deadline = time.monotonic() + 15
            while agent.client.counters["connect_failures"] < 4 and time.monotonic() < deadline:
                time.sleep(0.05)  # reconnect attempts follow the client's backoff; poll with a deadline
            broker.start()
            deadline = time.monotonic() + 15
            while agent.client.counters["connects"] < 2 and time.monotonic() < deadline:
                time.sleep(0.05)  # poll the client's counters with a deadline
        failures = [r for r in caplog.records if "cannot connect" in r.getMessage() and r.levelno >= logging.WARNING]
        recovered = [r for r in caplog.records if "failed attempts" in r.getMessage()]
        assert agent.client.counters["connect_failures"] >= 4
        assert len(failures) == 1 and len(recovered) == 1
    finally:
        agent.stop()


def test_relay_gap_record_published(broker: Broker, tmp_path: Path) -> None:
    """When the outbox evicted rows while offline, the station receives a gap message saying what was dropped."""
    col = Collector(broker, f"{PREFIX}/#")
    agent = Agent.make(broker, tmp_path, outbox_kw={"max_rows": 20})
    agent.outbox.put_many([Record(f"{PREFIX}/health", b"{}", Priority.HEALTH) for _ in range(10)])
    kept = [agent.outbox.put_many(records.motion_event(agent.topics, _event(i)))[0] for i in range(15)]
    agent.start()
    try:
        assert wait_all(col, kept, 10)
        assert col.wait_for(lambda m: any(x.topic == f"{PREFIX}/gap" for x in m), 10)
        gap = json.loads(next(x for x in col.messages if x.topic == f"{PREFIX}/gap").payload)
        assert gap["schema"] == "matthan/gap/1" and gap["dropped"] == {"health": 6} and gap["rows"] == 6
        assert gap["historical"] is True and gap["msg_id"].startswith("agent1-")
    finally:
        agent.stop()
        col.close()


def test_client_duplicate_client_id_explained(broker: Broker, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """Two agents sharing a client id kick each other off; the log says why and what to change."""
    import logging

    from agent.mqtt import MqttClient
    from tests.mqtt.harness import mqtt_settings

    first = Agent.make(broker, tmp_path).start()
    second = MqttClient(mqtt_settings(broker))
    try:
        assert first.wait_connected()
        with caplog.at_level(logging.WARNING, logger="agent.mqtt.client"):
            second.start()
            deadline = time.monotonic() + 20
            while "client id" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)  # the takeover happens on the broker; poll the log with a deadline
        assert "client id" in caplog.text
    finally:
        second.stop(timeout=2.0)
        first.stop()
