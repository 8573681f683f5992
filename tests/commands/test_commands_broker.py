"""Commands end to end through a real Mosquitto: the station publishes on `cmd/<name>`, the agent's MQTT client hands
messages to the dispatcher, answers come back on `cmd_resp/<name>` (or the v5 response topic) and the agent stays
up through a flood of malformed messages. The wiring here is what the daemon does (minus the outbox)."""

from __future__ import annotations

import json
import random
import threading
import time
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.commands import CommandDispatcher, CommandOps
from agent.mqtt import payloads, records
from agent.mqtt.client import InboundMessage, MqttClient, publish_properties
from agent.mqtt.settings import MqttSettings
from agent.mqtt.topics import Topics
from tests.rig.broker import Collector

pytestmark = pytest.mark.broker

PREFIX = "matthan/v1/xa-thu/agent-1"
MALFORMED = 60


def malformed_messages(seed: int = 7) -> list[tuple[str, bytes]]:
    """60 broken messages: bad JSON, wrong types, unknown commands, bad args, expired, oversized, random bytes."""
    rng = random.Random(seed)
    out: list[tuple[str, bytes]] = [
        ("status", b"{"), ("status", b""), ("status", b"null"), ("status", b"[]"), ("status", b'"x"'),
        ("status", b'{"req_id": 1}'), ("status", b'{"req_id": "m-a", "args": 3}'),
        ("reboot", b'{"req_id": "m-b"}'), ("status", b'{"req_id": "m-c", "expires": 1}'),
        ("snapshot", b'{"req_id": "m-d"}'), ("snapshot", b'{"req_id": "m-e", "args": {"camera": "nope"}}'),
        ("set_camera", b'{"req_id": "m-f", "args": {"camera": "cho", "enabled": "no"}}'),
        ("status", b'{"req_id": "m-g", "x": ' + b"1" * 70_000 + b"}"),
    ]
    while len(out) < MALFORMED:
        kind = rng.randrange(3)
        if kind == 0:
            out.append((rng.choice(["status", "snapshot", "rebirth"]), rng.randbytes(rng.randrange(1, 200))))
        elif kind == 1:
            out.append(("set_camera", json.dumps({"req_id": f"m-{len(out)}", "args": {"camera": rng.random()}})
                        .encode()))
        else:
            out.append((rng.choice(["x", "cmd", "STATUS"]), json.dumps({"req_id": f"m-{len(out)}"}).encode()))
    return out


@pytest.fixture
def agent(auth_broker) -> Any:  # type: ignore[no-untyped-def]
    """An agent-side MQTT client with the dispatcher wired to its command handler; stopped at teardown."""
    calls: list[tuple[Any, ...]] = []
    ops = CommandOps(
        camera_ids=lambda: {"cho", "cong-lang"},
        rediscover=lambda: calls.append(("rediscover",)) or {"started": True},
        snapshot=lambda cam: calls.append(("snapshot", cam)) or {"queued": True},
        status=lambda: {"cameras": 2},
        reload_config=lambda: calls.append(("reload_config",)) or {"cameras": 2},
        rebirth=lambda: calls.append(("rebirth",)) or {"republished": 3},
        set_camera=lambda cam, en: calls.append(("set_camera", cam, en)) or {"enabled": en},
    )
    dispatcher = CommandDispatcher(ops)
    settings = MqttSettings(host=auth_broker.host, port=auth_broker.port, client_id="agent-1", prefix=PREFIX,
                            username="agent", password=auth_broker.password)
    client = MqttClient(settings)
    topics = Topics(PREFIX)

    def on_command(msg: InboundMessage) -> None:
        name = topics.cmd_name(msg.topic)
        if name is None:
            return
        resp = dispatcher.handle(name, msg.payload, retained=msg.retain)
        if resp is None:
            return
        rec = records.command_response(topics, name, resp.to_dict(), response_topic=msg.response_topic,
                                       correlation=msg.correlation_data)
        client.publish(rec.topic, rec.payload, properties=publish_properties(correlation=rec.correlation))

    client.on_command(on_command)
    client.start()
    deadline = time.monotonic() + 10
    while not client.connected and time.monotonic() < deadline:
        threading.Event().wait(0.05)
    assert client.connected
    yield client, dispatcher, calls
    client.stop()


def wait_count(collector: Collector, n: int, timeout: float = 20.0) -> bool:
    return collector.wait_for(lambda msgs: len(msgs) >= n, timeout)


def test_commands_broker_every_command_and_flood(auth_broker, agent) -> None:  # type: ignore[no-untyped-def]
    """Each command answers ok; 60 malformed messages each get an error answer; the agent still answers after."""
    _client, dispatcher, calls = agent
    station = auth_broker.client("station-1", user="station")
    answers = Collector(auth_broker, f"{PREFIX}/cmd_resp/#", client_id="station-sub")
    good = [("rediscover", {}), ("snapshot", {"camera": "cho"}), ("status", {}), ("reload_config", {}),
            ("rebirth", {}), ("set_camera", {"camera": "cong-lang", "enabled": False})]
    for i, (name, args) in enumerate(good):
        station.publish(f"{PREFIX}/cmd/{name}", json.dumps({"req_id": f"g-{i}", "args": args}), qos=1)
    assert wait_count(answers, len(good)), answers.messages
    bodies = [json.loads(m.payload) for m in answers.messages]
    assert all(b["ok"] for b in bodies) and {b["req_id"] for b in bodies} == {f"g-{i}" for i in range(len(good))}
    assert ("set_camera", "cong-lang", False) in calls and ("snapshot", "cho") in calls

    flood = malformed_messages()
    for name, payload in flood:
        station.publish(f"{PREFIX}/cmd/{name}", payload, qos=1)
    assert wait_count(answers, len(good) + len(flood)), (len(answers.messages), dispatcher.counters)
    errors = [json.loads(m.payload) for m in answers.messages[len(good):]]
    assert len(errors) == MALFORMED and all(b["ok"] is False and b["error"]["code"] for b in errors)
    assert len(calls) == 5  # nothing in the flood ran an operation

    station.publish(f"{PREFIX}/cmd/status", json.dumps({"req_id": "after"}), qos=1)
    assert answers.wait_for(lambda msgs: any(json.loads(m.payload).get("req_id") == "after" for m in msgs), 10)
    answers.close()
    station.disconnect()


@pytest.fixture
def retained_before_start(auth_broker) -> Any:  # type: ignore[no-untyped-def]
    """A retained command left on the broker before the agent connects (delivered with retain=1 on subscribe)."""
    station = auth_broker.client("station-0", user="station")
    station.publish(f"{PREFIX}/cmd/rebirth", json.dumps({"req_id": "ret"}), qos=1, retain=True).wait_for_publish(5)
    station.disconnect()
    return "ret"


def test_commands_broker_retained_duplicate_and_response_topic(  # type: ignore[no-untyped-def]
        auth_broker, retained_before_start, agent) -> None:
    """A retained command is ignored, a repeated req_id answered once, and a v5 response topic is honoured."""
    _client, dispatcher, calls = agent
    station = auth_broker.client("station-2", user="station")
    answers = Collector(auth_broker, f"{PREFIX}/cmd_resp/#", client_id="station-sub2")
    private = Collector(auth_broker, "station/replies/#", client_id="station-sub3")
    for _ in range(2):
        station.publish(f"{PREFIX}/cmd/rediscover", json.dumps({"req_id": "dup"}), qos=1).wait_for_publish(5)
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = "station/replies/7"
    props.CorrelationData = b"corr-7"
    station.publish(f"{PREFIX}/cmd/status", json.dumps({"req_id": "rt"}), qos=1, properties=props)
    assert private.wait_for(lambda msgs: len(msgs) >= 1, 10)
    reply = private.messages[0]
    assert json.loads(reply.payload)["req_id"] == "rt" and reply.properties.CorrelationData == b"corr-7"
    station.publish(f"{PREFIX}/cmd/status", json.dumps({"req_id": "fence"}), qos=1)
    assert answers.wait_for(lambda msgs: any(json.loads(m.payload)["req_id"] == "fence" for m in msgs), 10)
    ids = [json.loads(m.payload)["req_id"] for m in answers.messages]
    assert ids.count("dup") == 1 and "ret" not in ids
    assert calls.count(("rediscover",)) == 1 and ("rebirth",) not in calls
    assert dispatcher.counters["ignored_retained"] == 1 and dispatcher.counters["repeated"] == 1
    # Clear the retained command so it does not outlive the test on the broker.
    station.publish(f"{PREFIX}/cmd/rebirth", b"", qos=1, retain=True).wait_for_publish(5)
    for c in (answers, private):
        c.close()
    station.disconnect()
    assert payloads.SCHEMAS["cmd_resp"]
