"""The console's MQTT subscriber: the station's side of the wire. Saves each event's snapshot JPEG to disk.

paho's network thread only folds messages into the `StationView` (under a lock) and queues the lines a plain
console prints; the console thread reads both. Connect from the thread whose namespace the broker lives in: the
socket, and paho's own thread started there, stay in that namespace.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from agent.demo.view import StationView, classify, snapshot_filename

log = logging.getLogger(__name__)

T = TypeVar("T")
PENDING_LINES_MAX = 2000  # plain-console lines waiting to be printed; beyond that the oldest are dropped
CONNECT_DEADLINE_S = 10.0  # a local broker answers in milliseconds


class Station:
    def __init__(self, *, prefix: str, snapshot_dir: Path) -> None:
        self.view = StationView(prefix)
        self.snapshot_dir = snapshot_dir
        self._lock = threading.Lock()
        self._lines: collections.deque[str] = collections.deque(maxlen=PENDING_LINES_MAX)
        self._subscribed = threading.Event()
        self._client: Any = None

    # -- connection (call from the namespace thread) -------------------------------------------------------------
    def connect(self, port: int) -> None:
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="matthan-demo-station",
                             protocol=mqtt.MQTTv5)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.reconnect_delay_set(0.2, 2.0)
        client.connect("127.0.0.1", port, keepalive=10)
        client.loop_start()
        self._client = client
        if not self._subscribed.wait(CONNECT_DEADLINE_S):
            raise TimeoutError(f"the console could not subscribe on 127.0.0.1:{port}")

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.disconnect()
            finally:
                client.loop_stop()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            client.subscribe(f"{self.view.prefix}/#", qos=1)
            self._subscribed.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        now = time.monotonic()
        kind, ident = classify(self.view.prefix, msg.topic)
        path = self._save_snapshot(ident, msg.payload) if kind == "event_snapshot" else None
        with self._lock:
            lines = self.view.handle(msg.topic, msg.payload, now)
            if path is not None:
                lines += self.view.snapshot_saved(ident, path)
            self._lines.extend(lines)

    def _save_snapshot(self, event_id: str, jpeg: bytes) -> str | None:
        path = self.snapshot_dir / snapshot_filename(event_id)
        try:
            self.snapshot_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(jpeg)
            tmp.replace(path)  # the file is whole or absent: a viewer never opens half a JPEG
        except OSError as exc:
            log.warning("cannot save the snapshot of event %s to %s: %s", event_id, path, exc.strerror or exc)
            return None
        return str(path)

    # -- reading (console thread) --------------------------------------------------------------------------------
    def read(self, fn: Callable[[StationView], T]) -> T:
        """Run `fn` on the view under the lock (render from inside, never keep references out)."""
        with self._lock:
            return fn(self.view)

    def take_lines(self) -> list[str]:
        with self._lock:
            lines = list(self._lines)
            self._lines.clear()
        return lines
