"""A station-side subscriber for the end-to-end tests: a separate process, as the real station is.

Persistent MQTT v5 session (clean_start=False, long expiry), QoS 1, everything under the agent's prefix; one JSON
line per message, flushed at once, so a test can read the file while this runs:
{"t": receive time, "topic": ..., "retain": bool, "text": utf-8 payload} or {"b64": ...} for binary payloads.

    STATION_USER=station STATION_PASSWORD=... python tests/e2e/station.py HOST PORT PREFIX OUTFILE

The credentials come from the environment (not argv, which every user on the machine can read in `ps`); without
STATION_USER the station connects anonymously. With STATION_RETAIN_AS_PUBLISHED=1 the station subscribes with the v5
Retain As Published option, so `retain` says whether the agent published the message retained (by default MQTT
clears the flag on live delivery, and only stored retained messages arrive with it).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions


def main() -> int:
    host, port, prefix, outfile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    out = open(outfile, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - kept open for the process's life
    lock = threading.Lock()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    as_published = os.environ.get("STATION_RETAIN_AS_PUBLISHED") == "1"

    def on_connect(client, userdata, flags, reason, props):  # type: ignore[no-untyped-def]
        if reason.is_failure:
            return
        if as_published:
            opts = SubscribeOptions(qos=1, retainAsPublished=True)
            client.subscribe([(f"{prefix}/#", opts), ("homeassistant/#", opts)])
        else:
            client.subscribe([(f"{prefix}/#", 1), ("homeassistant/#", 1)])

    def on_message(client, userdata, msg):  # type: ignore[no-untyped-def]
        rec = {"t": time.time(), "topic": msg.topic, "retain": bool(msg.retain)}
        user = getattr(msg.properties, "UserProperty", None) if msg.properties is not None else None
        if user:
            rec["props"] = dict(user)
        try:
            rec["text"] = msg.payload.decode("utf-8")
        except UnicodeDecodeError:
            rec["b64"] = base64.b64encode(msg.payload).decode()
        with lock:
            out.write(json.dumps(rec) + "\n")

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-station", protocol=mqtt.MQTTv5)
    client.on_connect = on_connect
    if os.environ.get("STATION_USER"):
        client.username_pw_set(os.environ["STATION_USER"], os.environ.get("STATION_PASSWORD"))
    client.on_message = on_message
    client.reconnect_delay_set(0.2, 2)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    deadline = time.monotonic() + 30
    while True:
        try:
            client.connect(host, port, keepalive=10, clean_start=False, properties=props)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # the broker is starting; bounded by the deadline
    client.loop_start()
    stop.wait()
    client.loop_stop()
    client.disconnect()
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
