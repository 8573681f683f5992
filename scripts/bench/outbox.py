#!/usr/bin/env python3
"""Benchmark of the durable outbox and the relay; prints one JSON object per line.

    .venv/bin/python scripts/bench/outbox.py [--rows 100000] [--replay-rate 0] [--window 64]

1. Durable insert rate: motion events committed with synchronous=FULL, batched (`put_many`, goal >= 2,000/s)
   and, for reference, one fsync per event (`put`).
2. Replay rate: a backlog of `--rows` events relayed to a Mosquitto this script starts on a free loopback port
   (goal >= 2,000 msg/s), measured from the connection to the last PUBACK.
3. Live-event latency during that replay: 20 live events per second are put while the backlog drains; a station
   subscriber in its own process timestamps their arrival (goal p95 <= 1 s).
Only loopback traffic; the broker and subscriber it starts are stopped at the end, also on error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent.models import Box, EventKind, MotionEvent  # after the sys.path line: runs from a checkout
from agent.mqtt import MqttClient, MqttSettings, Relay, RelaySettings, records
from agent.mqtt.topics import Topics
from agent.outbox import Outbox

PREFIX = "matthan/v1/bench/agent1"
LIVE_PER_S = 20.0
SUBSCRIBER = r"""
import sys, time, json
import paho.mqtt.client as mqtt
seen = 0
def on_message(c, u, m):
    global seen
    seen += 1
    if b'"camera":"live"' in m.payload:
        print(json.dumps({"ts": json.loads(m.payload)["ts"], "arrived": time.time()}), flush=True)
def on_connect(c, u, f, rc, p):
    c.subscribe(sys.argv[3], qos=0)
    print(json.dumps({"ready": True}), flush=True)
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
c.on_message, c.on_connect = on_message, on_connect
c.connect(sys.argv[1], int(sys.argv[2]))
c.loop_forever()
"""


def emit(obj: dict[str, object]) -> None:
    print(json.dumps(obj), flush=True)


def event(cam: str, n: int) -> MotionEvent:
    now = time.time()
    return MotionEvent(f"{cam}-{n}", cam, EventKind.START, now, now, peak_score=0.12, union_box=Box(0.1, 0.2, 0.3, 0.4),
                       zones=("gate",), frames_analysed=5)


def bench_insert(tmp: Path, n: int, batch: int) -> None:
    topics = Topics(PREFIX)
    ob = Outbox(tmp / f"insert-{batch}.sqlite3", agent_id="bench", max_bytes=1 << 30, max_rows=10_000_000)
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        recs = [r for k in range(i, min(n, i + batch)) for r in records.motion_event(topics, event("cam1", k))]
        if batch == 1:
            ob.put(recs[0])
        else:
            ob.put_many(recs)
    dt = time.perf_counter() - t0
    ob.close()
    emit({"bench": "outbox_insert_durable", "synchronous": "FULL", "batch": batch, "events": n,
          "seconds": round(dt, 3), "rate_per_s": round(n / dt), "goal_per_s": 2000 if batch > 1 else None,
          "ok": (n / dt >= 2000) if batch > 1 else None})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def mosquitto(tmp: Path) -> Iterator[int]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    f"max_queued_messages 200000\nlog_dest none\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("mosquitto did not start") from None
                time.sleep(0.05)  # waiting for the listener, bounded by the deadline
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def bench_replay(tmp: Path, rows: int, replay_rate: float, window: int) -> None:
    topics = Topics(PREFIX)
    ob = Outbox(tmp / "replay.sqlite3", agent_id="bench", max_bytes=1 << 30, max_rows=10_000_000)
    for i in range(0, rows, 1000):
        ob.put_many([r for k in range(i, min(rows, i + 1000)) for r in records.motion_event(topics, event("cam1", k))])
    with mosquitto(tmp) as port:
        sub = subprocess.Popen([sys.executable, "-c", SUBSCRIBER, "127.0.0.1", str(port), topics.events_motion()],
                               stdout=subprocess.PIPE, text=True)
        try:
            assert sub.stdout is not None
            first = sub.stdout.readline()
            if "ready" not in first:
                raise RuntimeError("station subscriber did not start")
            lines: list[str] = []
            reader = threading.Thread(target=lambda: lines.extend(iter(sub.stdout.readline, "")), daemon=True)
            reader.start()
            client = MqttClient(MqttSettings(host="127.0.0.1", port=port, client_id="bench-agent", prefix=PREFIX))
            relay = Relay(ob, client, RelaySettings(replay_rate=replay_rate, window=window))
            client.start()
            relay.start()
            while not relay.stats()["connected"]:
                time.sleep(0.01)  # waiting for CONNACK before the clock starts
            t0 = time.perf_counter()
            stop = threading.Event()
            live_sent = [0]

            def live() -> None:
                n = 0
                while not stop.wait(1.0 / LIVE_PER_S):
                    ob.put_many(records.motion_event(topics, event("live", n)))
                    n += 1
                    live_sent[0] = n

            lt = threading.Thread(target=live, daemon=True)
            lt.start()
            while relay.stats()["acked"] - live_sent[0] < rows and time.perf_counter() - t0 < 600:
                time.sleep(0.02)  # polling the relay's counter; bounded at 10 minutes
            dt = time.perf_counter() - t0
            stop.set()
            lt.join()
            time.sleep(1.0)  # let the last live events reach the subscriber before it is stopped
            relay.stop()
            client.stop()
        finally:
            sub.terminate()
            sub.wait(10)
    ob.close()
    replay_rate_measured = rows / dt
    emit({"bench": "outbox_replay", "rows": rows, "seconds": round(dt, 2),
          "rate_msg_per_s": round(replay_rate_measured), "replay_rate_setting": replay_rate or "unlimited",
          "window": window, "goal_msg_per_s": 2000,
          "ok": replay_rate_measured >= 2000})
    lat = sorted(d["arrived"] - d["ts"] for d in (json.loads(x) for x in lines if x.strip()) if "ts" in d)
    p95 = lat[max(0, int(len(lat) * 0.95) - 1)] if lat else None
    emit({"bench": "live_latency_during_replay", "live_per_s": LIVE_PER_S, "samples": len(lat),
          "p50_s": round(statistics.median(lat), 4) if lat else None, "p95_s": round(p95, 4) if p95 else None,
          "max_s": round(lat[-1], 4) if lat else None, "goal_p95_s": 1.0, "ok": bool(lat) and p95 is not None
          and p95 <= 1.0})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--insert-events", type=int, default=20_000)
    ap.add_argument("--replay-rate", type=float, default=0.0, help="backlog msg/s (0 = unlimited)")
    ap.add_argument("--window", type=int, default=64)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="matthan-bench-") as d:
        tmp = Path(d)
        bench_insert(tmp, args.insert_events, 100)
        bench_insert(tmp, 500, 1)
        bench_replay(tmp, args.rows, args.replay_rate, args.window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
