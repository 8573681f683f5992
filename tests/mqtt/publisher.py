"""A stand-alone publishing agent for the kill tests: the real outbox, client and relay in their own process.

    python -m tests.mqtt.publisher --port P --state DIR --log FILE [--rate 20] [--drain]

It produces motion events for two cameras at `rate` per second and appends one line per event to `--log` after
`put` returned (so every logged msg_id is durable). `--drain` produces nothing and exits 0 once the outbox is
empty. Tests kill it with SIGKILL at random moments; nothing here tries to survive that gracefully.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from agent.models import EventKind, MotionEvent
from agent.mqtt import MqttClient, MqttSettings, Relay, RelaySettings, records
from agent.outbox import Outbox

PREFIX = "matthan/v1/test-site/agent1"
DRAIN_DEADLINE_S = 60.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--state", type=Path, required=True)
    ap.add_argument("--log", type=Path, required=True)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--drain", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="publisher %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    outbox = Outbox(args.state / "outbox.sqlite3", agent_id="agent1")
    client = MqttClient(MqttSettings(host="127.0.0.1", port=args.port, client_id="agent1", prefix=PREFIX,
                                     keepalive_s=5, connect_timeout_s=3.0, backoff_min_s=0.1, backoff_max_s=1.0))
    relay = Relay(outbox, client, RelaySettings(replay_rate=0))
    client.start()
    relay.start()
    if args.drain:
        deadline = time.monotonic() + DRAIN_DEADLINE_S
        while not stop.wait(0.05):
            if (outbox.stats().depth == 0 and relay.stats()["connected"]) or time.monotonic() > deadline:
                break
        code = 0 if outbox.stats().depth == 0 else 1
    else:
        boot = outbox.boot
        n = 0
        with open(args.log, "a", encoding="utf-8") as log_file:
            while not stop.wait(1.0 / args.rate):
                cam = ("cam1", "cam2")[n % 2]
                now = time.time()
                ev = MotionEvent(f"{cam}-{boot}-{n}", cam, EventKind.START, now, now)
                msg_id = outbox.put_many(records.motion_event(client.topics, ev))[0]
                log_file.write(f"{msg_id}\t{cam}\t{now}\n")
                log_file.flush()  # in the kernel once written: survives SIGKILL of this process
                n += 1
        code = 0
    relay.stop()
    client.stop()
    outbox.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
