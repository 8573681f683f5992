"""The daemon in this process against a real Mosquitto: built from a real configuration, with its MQTT client, relay,
health and commands threads running (`Daemon.start_services`), but no camera worker pool and no signal handling.
Plus the station's side: commands and a snapshot of what the broker retains."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent.app.daemon import Daemon
from agent.config import AgentConfig
from tests.rig.broker import Broker

SITE, AGENT = "xa-thu", "agent-1"
PREFIX = f"matthan/v1/{SITE}/{AGENT}"
UP_DEADLINE_S = 15.0  # connect + subscribe on loopback takes milliseconds; generous for a loaded 2-core box


def make_daemon(broker: Broker, tmp_path: Path, *, ha: bool = False, cameras: tuple[str, ...] = ("cho",)) -> Daemon:
    """A built (not started) daemon; cameras have a direct RTSP URL that nothing serves (no worker runs them)."""
    cfg = AgentConfig.model_validate({
        "site_id": SITE, "agent_id": AGENT,
        "mqtt": {"host": broker.host, "port": broker.port},
        "discovery": {"enabled": False},
        "storage": {"state_dir": str(tmp_path / "state")},
        "cameras": [{"name": c, "url": f"rtsp://127.0.0.1:9/{c}"} for c in cameras],
        "health": {"home_assistant": {"enabled": ha}},
    })
    (tmp_path / "state").mkdir(exist_ok=True)
    d = Daemon(cfg, config_path=tmp_path / "agent.yaml")
    d._build()
    return d


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.02) -> Any:
    """Poll with a deadline; fail with `what` when it passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        threading.Event().wait(step)  # polling interval, bounded by the deadline above


@contextmanager
def running(d: Daemon) -> Iterator[list[threading.Thread]]:
    """Start the daemon's services, wait until commands can arrive and the relay sends; always shut down."""
    threads = d.start_services()
    try:
        wait_until(lambda: d.client.subscribed and d.relay.stats()["connected"], UP_DEADLINE_S, "the daemon's link")
        yield threads
    finally:
        d.begin_stop()
        d._shutdown(threads)


def retained(broker: Broker, *filters: str, timeout: float = 10.0) -> dict[str, bytes]:
    """What the broker retains under `filters` now: subscribe, then publish a fence; the broker delivers retained
    messages on subscribe, before any later message of ours, so everything before the fence is the full set."""
    got: dict[str, bytes] = {}
    fence = f"{PREFIX}-station/fence/{time.monotonic_ns()}"
    done = threading.Event()
    c = broker.client(connect=False)

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        if msg.topic == fence:
            done.set()
        elif msg.retain:
            got[msg.topic] = bytes(msg.payload)

    subscribed = threading.Event()
    c.on_message = on_message
    c.on_subscribe = lambda *_a: subscribed.set()
    c.connect(broker.host, broker.port, keepalive=10)
    c.loop_start()
    try:
        c.subscribe([(f, 1) for f in (*filters, fence)])
        assert subscribed.wait(timeout), "station could not subscribe"
        c.publish(fence, b"x", qos=1)
        assert done.wait(timeout), "fence message never came back"
        return got
    finally:
        c.disconnect()
        c.loop_stop()


def clear(broker: Broker, topics: list[str]) -> None:
    """Delete retained messages as a station would (empty retained payload), each acknowledged by the broker."""
    c = broker.client("station-clear", user="station")
    try:
        for t in topics:
            c.publish(t, b"", qos=1, retain=True).wait_for_publish(10)
    finally:
        c.disconnect()
        c.loop_stop()


def command(station: Any, name: str, req_id: str, args: dict[str, Any] | None = None) -> None:
    station.publish(f"{PREFIX}/cmd/{name}", json.dumps({"req_id": req_id, "args": args or {}}), qos=1)
