"""The relay: one thread that moves rows from the outbox to the broker and deletes them only when the broker
confirmed them with a successful MQTT v5 PUBACK.

- In order: rows are claimed by seq. Live rows (stored after the current connection came up) go first; the backlog
  found at connect time is replayed oldest first, paced by `replay_rate`, stamped `"historical": true`.
- A window of QoS 1 messages in flight, clamped to the broker's Receive Maximum. When the oldest message has waited
  `stall_s` for its PUBACK nothing new is sent: a hung broker then holds at most `stall_s` worth of messages that
  will be sent again (and arrive twice) after the reconnect.
- PUBACK reason codes below 0x80 are success (0x10 "no matching subscribers" included): the row is deleted, or in
  station-ack mode marked sent and kept until the station's retained `{"seq": N}` covers it. Codes from 0x80 on
  (0x87 not authorized, 0x97 quota exceeded, ...) move the row to the dead-letter table: counted, never resent,
  never deleted as if delivered.
- Nothing is remembered across a reconnect or a restart except what the outbox holds: on every connect the cursors
  start again from the beginning, so every unacknowledged row is sent again.

Everything the relay learns arrives on one queue (`MqttClient.events`): connects, drops, PUBACKs, station acks and
wake-ups from `Outbox.put`. The relay thread is the only one that touches the outbox for delivery bookkeeping.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.mqtt import payloads
from agent.mqtt.client import MqttClient, publish_properties
from agent.mqtt.events import Connected, Disconnected, InboundMessage, PubAck
from agent.mqtt.settings import RelaySettings
from agent.outbox import Outbox, Priority, Row

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.05  # how often other processes' puts are noticed (PRAGMA data_version); bounds live latency
ERROR_PAUSE_S = 1.0  # after a database error (disk full, I/O error) before trying again
# Station-ack mode, after a reconnect: the station (reconnecting too) gets this long to report what it already
# stored before unconfirmed rows are sent again; meanwhile live rows flow and the backlog waits.
STATION_ACK_GRACE_S = 2.0


@dataclass(frozen=True, slots=True)
class _StationAck:
    seq: int


class _Wake:
    """A put happened in this process."""


_WAKE = _Wake()


@dataclass(slots=True)
class _Inflight:
    msg_id: str
    seq: int
    sent_at: float


class TokenBucket:
    """Pacing of the backlog replay: `rate` per second with a small burst; rate 0 means unlimited."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self._clock = rate, max(1.0, burst), clock
        self._tokens, self._last = self.burst, clock()

    def take(self, want: int) -> int:
        if self.rate <= 0:
            return want
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        got = min(want, int(self._tokens))
        self._tokens -= got
        return got

    def wait_s(self) -> float:
        return 0.0 if self.rate <= 0 else max(0.0, (1 - self._tokens) / self.rate)


class Relay:
    """Outbox → broker. Create, `start()`, and `stop()` on shutdown (before `MqttClient.stop()`)."""

    def __init__(self, outbox: Outbox, client: MqttClient, settings: RelaySettings | None = None,
                 *, clock: Callable[[], float] = time.monotonic) -> None:
        self.outbox, self.client, self.settings = outbox, client, settings or RelaySettings()
        self.topics = client.topics
        self._q: queue.Queue[Any] = client.events
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_pending = threading.Event()
        self._gen = 0
        self._window = self.settings.window
        self._inflight: dict[int, _Inflight] = {}
        self._backlog_hw = self._live_cursor = self._hist_cursor = 0
        self._more_live = self._more_hist = False
        self._bucket = TokenBucket(self.settings.replay_rate, self.settings.replay_rate * 0.2, clock)
        self._station_hw = 0
        self._to_ack: list[str] = []
        self._to_mark: list[str] = []
        self._to_dead: list[tuple[str, str]] = []
        self._confirm_due = False
        self._requeue_due = 0.0  # station-ack mode: when to resend unconfirmed rows after a reconnect (0: done)
        self._live_retained: set[str] = set()  # retained topics sent live on this connection (newer than backlog)
        self.counters = {"published": 0, "acked": 0, "dead_lettered": 0, "historical": 0, "reconnects": 0,
                         "db_errors": 0}
        self.heartbeat = clock()  # bumped on every turn of the relay loop: the supervisor's liveness check
        outbox.listeners.append(self.notify)
        if self.settings.station_ack:
            client.subscribe(self.topics.ack(), self._on_station_ack)

    # ---- outside threads --------------------------------------------------------------------------------------
    def notify(self) -> None:
        """Outbox listener: a put committed in this process. At most one wake-up waits in the queue."""
        if not self._wake_pending.is_set():
            self._wake_pending.set()
            self._post(_WAKE)

    def _on_station_ack(self, msg: InboundMessage) -> None:
        seq = payloads.parse_station_ack(msg.payload)
        if seq is None:
            log.warning("relay: ignoring malformed station ack on %s", msg.topic)
        elif not self._post(_StationAck(seq)):
            log.warning("relay: busy, station ack %d dropped (the next one, or the retained one after a reconnect, "
                        "carries it)", seq)

    def _post(self, item: Any) -> bool:
        """Hand an item to the relay thread without ever blocking the caller (the queue is bounded). A full queue
        means the relay has thousands of items to work through and will look at the outbox anyway; a dropped
        wake-up is re-armed so the next put posts one again."""
        try:
            self._q.put_nowait(item)
        except queue.Full:
            if item is _WAKE:
                self._wake_pending.clear()
            return False
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._post(_WAKE)
        if self._thread is not None:
            self._thread.join(timeout)

    def stats(self) -> dict[str, Any]:
        return {**self.counters, "inflight": len(self._inflight), "window": self._window, "connected": bool(self._gen),
                "station_ack_seq": self._station_hw or None}

    # ---- the relay thread -------------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.heartbeat = self._clock()
            try:
                self._turn()
            except sqlite3.Error as e:
                # The outbox keeps what it has; a full or failing disk must not end delivery for good.
                self.counters["db_errors"] += 1
                log.error("relay: outbox database error (%s); retrying in %.0f s", e, ERROR_PAUSE_S)
                self._stop.wait(ERROR_PAUSE_S)
        try:
            self._flush()
        except sqlite3.Error as e:
            log.error("relay: could not record the last acknowledgements (%s); those rows will be sent again", e)

    def _turn(self) -> None:
        try:
            self._handle(self._q.get(timeout=self._wait_s()))
            for _ in range(10_000):  # drain what else arrived, bounded so sending is never starved
                self._handle(self._q.get_nowait())
        except queue.Empty:
            pass
        if self.outbox.changed():
            self._more_live = self._more_hist = True
        self._flush()
        if self._gen:
            self._fill()

    def _wait_s(self) -> float:
        if not self._gen or len(self._inflight) >= self._window:
            return IDLE_POLL_S
        if self._more_live:
            return 0.0
        if self._requeue_due:
            return IDLE_POLL_S
        if self._more_hist and self._hist_cursor < self._backlog_hw:
            return min(IDLE_POLL_S, self._bucket.wait_s())
        return IDLE_POLL_S

    def _handle(self, item: Any) -> None:
        if isinstance(item, PubAck):
            self._on_puback(item)
        elif item is _WAKE:
            self._wake_pending.clear()
            self._more_live = True
        elif isinstance(item, Connected):
            self._on_connected(item)
        elif isinstance(item, Disconnected):
            if item.generation == self._gen:
                self._gen = 0
                self._inflight.clear()
        elif isinstance(item, _StationAck) and item.seq > self._station_hw:
            self._station_hw = item.seq
            self._confirm_due = True

    def _on_connected(self, ev: Connected) -> None:
        self._gen = ev.generation
        self._window = max(1, min(self.settings.window, ev.receive_maximum))
        self._inflight.clear()
        if self.settings.station_ack:
            self._requeue_due = self._clock() + STATION_ACK_GRACE_S
        self._backlog_hw = self.outbox.max_seq()
        self._live_cursor, self._hist_cursor = self._backlog_hw, 0
        self._more_live = self._more_hist = True
        self._live_retained.clear()
        self.counters["reconnects"] += 1
        depth = self.outbox.stats().depth
        if depth:
            log.info("relay: connected; replaying a backlog of %d rows at %s msg/s", depth,
                     self.settings.replay_rate or "unlimited")

    def _on_puback(self, ack: PubAck) -> None:
        if ack.generation != self._gen:
            return  # an old connection's late answer: its rows are sent again on the new one anyway
        info = self._inflight.pop(ack.mid, None)
        if info is None:
            return
        if ack.reason_code < 0x80:
            if self.settings.station_ack and info.seq > self._station_hw:
                self._to_mark.append(info.msg_id)
            else:
                self._to_ack.append(info.msg_id)
        else:
            self._to_dead.append((info.msg_id, f"PUBACK reason code 0x{ack.reason_code:02x}"))

    def _flush(self) -> None:
        if self._to_ack:
            self.outbox.ack(self._to_ack)
            self.counters["acked"] += len(self._to_ack)
            self._to_ack = []
        if self._to_mark:
            self.outbox.mark_sent(self._to_mark)
            self.counters["acked"] += len(self._to_mark)
            self._to_mark = []
        for msg_id, reason in self._to_dead:
            self.outbox.dead_letter(msg_id, reason)
            self.counters["dead_lettered"] += 1
        self._to_dead = []
        if self._confirm_due:
            self._confirm_due = False
            self.outbox.confirm(self._station_hw)

    def _fill(self) -> None:
        if self._requeue_due and self._clock() >= self._requeue_due:
            self._flush()  # the station's latest acknowledgement first: rows it covers are deleted, not resent
            n = self.outbox.requeue_sent(upto_seq=self._backlog_hw)
            self._requeue_due = 0.0
            self._more_hist = True
            if n:
                log.info("relay: %d rows the station has not confirmed are sent again", n)
        if self._inflight:
            oldest = next(iter(self._inflight.values()))
            if self._clock() - oldest.sent_at > self.settings.stall_s:
                return
        free = self._window - len(self._inflight)
        if free > 0 and self._more_live:
            want = min(free, self.settings.claim_batch)
            rows = self.outbox.claim(want, after_seq=self._live_cursor)
            self._more_live = len(rows) == want
            free -= self._send(rows, live=True)
        if free > 0 and self._more_hist and self._hist_cursor < self._backlog_hw and not self._requeue_due:
            want = self._bucket.take(min(free, self.settings.claim_batch))
            if want:
                rows = self.outbox.claim(want, after_seq=self._hist_cursor, upto_seq=self._backlog_hw,
                                         historical=True)
                self._more_hist = len(rows) == want
                self._send(rows, live=False)

    def _advance(self, seq: int, live: bool) -> None:
        if live:
            self._live_cursor = seq
        else:
            self._hist_cursor = seq

    def _send(self, rows: list[Row], *, live: bool) -> int:
        sent = 0
        now = self._clock()
        for row in rows:
            topic, body = row.topic, row.payload
            if row.priority == Priority.GAP:
                topic, body = self.topics.gap(), payloads.gap(json.loads(body))
            historical = row.historical and not live
            body = payloads.stamp(body, msg_id=row.msg_id, seq=row.seq, historical=historical)
            user = None
            if not body.startswith(b"{"):
                user = [("msg_id", row.msg_id), ("seq", str(row.seq))] + ([("historical", "true")] if historical
                                                                          else [])
            retain = row.retain
            if retain and live:
                self._live_retained.add(topic)
            elif retain and topic in self._live_retained:
                retain = False  # replayed state must not overwrite the newer state already sent live
            try:
                res = self.client.publish(topic, body, qos=row.qos, retain=retain,
                                          properties=publish_properties(user, row.correlation))
            except (ValueError, TypeError) as e:  # paho refuses e.g. a wildcard topic: no broker would take it
                self._to_dead.append((row.msg_id, f"not publishable: {e}"))
                self._advance(row.seq, live)
                continue
            if res is None or res[0] != self._gen:
                if live:
                    self._more_live = True
                return sent  # connection gone: the cursor stays before this row, it is sent on the next connect
            sent += 1
            self.counters["published"] += 1
            self.counters["historical"] += int(historical)
            self._advance(row.seq, live)
            if row.qos == 0:
                self._to_ack.append(row.msg_id)
            else:
                self._inflight[res[1]] = _Inflight(row.msg_id, row.seq, now)
        return sent
