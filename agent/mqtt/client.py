"""The broker connection: paho-mqtt 2.x, MQTT v5, clean start, last will, reconnect with capped jittered backoff.

Every connection attempt uses a fresh paho client with a fresh session id in its will, because the will is fixed
at CONNECT time and the station must be able to ignore an `offline` from a stale connection (a hung broker that
wakes up processes old CONNECTs and publishes their wills late). paho's own reconnect loop is not used: a manager
thread owns the cycle connect → supervise → tear down → back off, and its watchdog drops a client whose broker
stopped acknowledging (a known paho failure mode after long outages is a client that never reconnects).

paho callbacks do nothing but put small tuples on bounded queues (`events` for the relay, the inbound queue for
subscriptions), never blocking: no database work and no locks on paho's network thread. Inbound messages are handed
to their handlers on the `mqtt-inbound` thread. A PUBACK that finds `events` full is dropped, counted, and the
connection is replaced: the relay sends every unacknowledged row again after a reconnect (duplicates, never loss).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from agent.mqtt import payloads
from agent.mqtt.events import Connected, Disconnected, Handler, InboundMessage, PubAck
from agent.mqtt.settings import MqttSettings, backoff_delay
from agent.mqtt.topics import Topics

log = logging.getLogger(__name__)

INBOUND_QUEUE_MAX = 256  # commands are rare; a flood beyond this is dropped and counted, never buffered forever
# PUBACKs and connection events for the relay. In flight at once: the relay's window (config caps it at 1,000) plus
# the retained state re-published on connect or rebirth (about 5 topics per camera); full means the relay stopped.
EVENTS_QUEUE_MAX = 4096
EVENT_PUT_POLL_S = 0.5  # the connection thread waits for room in `events` in steps this long, watching for stop
# The connection thread's heartbeat may stand still for a backoff wait, a connect and a CONNACK wait (connect_timeout
# each) and a teardown; this margin adds DNS lookups, which no timeout of ours bounds (5 s x 2 tries x 3 servers).
HEARTBEAT_MARGIN_S = 30.0
TEARDOWN_JOIN_S = 5.0  # a wedged paho thread is abandoned after this (the leak is logged and counted)
OFFLINE_PUBLISH_WAIT_S = 2.0  # clean shutdown: how long the explicit `offline` may take
FAIL_LOG_EVERY_S = 300.0  # during a long outage: one reminder line per 5 minutes, not one per attempt
STABLE_AFTER_S = 30.0  # a connection that lasted this long resets the backoff; shorter ones keep backing off
SESSION_TAKEN_OVER = 0x8E  # DISCONNECT reason: another client connected with our client id
FLAP_HINT_AFTER = 3  # short-lived connections in a row before the log suggests a duplicate client id

CONNECT_ERRORS = (OSError, ssl.SSLError, ValueError)  # DNS, refused, timeout, TLS verification, bad host


class MqttClient:
    """One logical connection to the station's broker, kept up until `stop()`."""

    def __init__(self, settings: MqttSettings, *, rand: random.Random | None = None,
                 events_max: int = EVENTS_QUEUE_MAX) -> None:
        self.settings = settings
        self.topics = Topics(settings.prefix, settings.ha_prefix)
        self.events: queue.Queue[Connected | Disconnected | PubAck] = queue.Queue(events_max)  # read by the relay
        self._inbound: queue.Queue[tuple[int, Any]] = queue.Queue(INBOUND_QUEUE_MAX)
        self._handlers: list[tuple[str, int, Handler]] = []
        self._rand = rand or random.Random()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards _client/_generation between the manager and publishers
        self._client: paho.Client | None = None
        self._generation = 0
        self._connected_gen = 0
        self._session = ""
        self._dropped_evt: dict[int, threading.Event] = {}
        self._suback_evt: dict[int, threading.Event] = {}  # per connection: the broker confirmed our subscriptions
        self._drop_reason: dict[int, tuple[int, str]] = {}  # per connection: why paho says it ended
        self._outstanding: dict[tuple[int, int], float] = {}  # (gen, mid) -> monotonic send time; watchdog input
        self.counters = {"connects": 0, "connect_failures": 0, "disconnects": 0, "watchdog_kicks": 0,
                         "inbound_dropped": 0, "leaked_threads": 0, "manager_errors": 0, "events_dropped": 0}
        self.heartbeat = time.monotonic()  # bumped by the connection thread on every attempt and every 0.5 s up
        self._down_since: float | None = None  # monotonic time of the first failed attempt of this outage
        self._failures = 0
        self._last_fail_log = 0.0
        self._threads: list[threading.Thread] = []
        self._retained: dict[str, bytes] = {}  # state topics re-published on every connect (guarded by _lock)
        # The last retained row others (the relay: camera motion ON/OFF) handed over per topic, for `rebirth`;
        # one entry per topic, so bounded by the cameras (guarded by _lock).
        self._rows: dict[str, tuple[bytes, Properties | None]] = {}
        self._on_connected: list[Callable[[str], None]] = []

    # ---- public API -------------------------------------------------------------------------------------------
    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1) -> None:
        """Register before start(): subscribed on every connect, handler runs on the `mqtt-inbound` thread.

        Handlers must be quick (hand long work to a bounded queue of your own): they share one thread, and the
        station acknowledgement is read on it too."""
        self._handlers.append((topic_filter, qos, handler))

    def on_command(self, handler: Handler) -> None:
        """Commands on `<prefix>/cmd/<name>` (retained ones included: the handler must ignore those)."""
        self.subscribe(self.topics.cmd_filter(), handler)

    def on_connected(self, handler: Callable[[str], None]) -> None:
        """Called with the new session id after every connect, on the connection thread (not paho's): e.g. to
        re-publish Home Assistant discovery. Must not block for long."""
        self._on_connected.append(handler)

    def publish_state(self, topic: str, payload: bytes) -> bool:
        """Retained state (camera status/motion, discovery): sent now if connected, and again after every
        reconnect, so the broker always holds the latest value. Not through the outbox: only the latest counts."""
        with self._lock:
            self._retained[topic] = payload
        return self.publish(topic, payload, qos=1, retain=True) is not None

    def clear_state(self, topic: str) -> None:
        """Remove a retained state topic (an empty retained message deletes it at the broker)."""
        with self._lock:
            self._retained.pop(topic, None)
            self._rows.pop(topic, None)
        self.publish(topic, b"", qos=1, retain=True)

    def rebirth(self) -> int:
        """Re-publish the agent's `online` (same session) and, per topic `publish_state` does not own, the last
        retained row `publish()` sent (camera motion ON/OFF from the relay, same msg_id). Returns how many."""
        with self._lock:
            client, gen, session = self._client, self._connected_gen, self._session
            rows = list(self._rows.items())
        if client is None or not gen:
            return 0
        client.publish(self.topics.status(), payloads.agent_status("online", session, time.time(),
                                                                   version=self.settings.version), qos=1, retain=True)
        for topic, (payload, props) in rows:
            self.publish(topic, payload, qos=1, retain=True, properties=props)
        return 1 + len(rows)

    @property
    def connected(self) -> bool:
        return self._connected_gen != 0

    @property
    def subscribed(self) -> bool:
        """Connected and the broker confirmed the subscriptions (commands can arrive)."""
        evt = self._suback_evt.get(self._connected_gen)
        return bool(self._connected_gen) and (not self._handlers or (evt is not None and evt.is_set()))

    @property
    def session(self) -> str:
        return self._session

    def start(self) -> None:
        for name, target in (("mqtt-conn", self._manage), ("mqtt-inbound", self._dispatch)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        """Clean shutdown within `timeout` s in all: explicit retained `offline` for the current session (waited
        for at most OFFLINE_PUBLISH_WAIT_S), DISCONNECT (no will), join."""
        deadline = time.monotonic() + timeout  # one deadline for all: shutdown must fit systemd's stop timeout
        with self._lock:
            client, gen = self._client, self._connected_gen
        if client is not None and gen:
            info = client.publish(self.topics.status(), payloads.agent_status(
                "offline", self._session, time.time(), version=self.settings.version), qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(max(0.0, min(OFFLINE_PUBLISH_WAIT_S, deadline - time.monotonic())))
        self._stop.set()
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                properties: Properties | None = None) -> tuple[int, int] | None:
        """Hand one message to paho. Returns (generation, mid), or None when there is no connection."""
        with self._lock:
            client, gen = self._client, self._connected_gen
        if client is None or not gen:
            return None
        info = client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            return None
        if qos:
            self._outstanding[(gen, info.mid)] = time.monotonic()
        if retain and topic != self.topics.status():
            with self._lock:
                if topic not in self._retained:
                    if payload:
                        self._rows[topic] = (payload, properties)
                    else:
                        self._rows.pop(topic, None)
        return gen, info.mid

    # ---- the connection manager -------------------------------------------------------------------------------
    def _manage(self) -> None:
        attempt = short = 0
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            try:
                up = self._cycle()
                if up >= STABLE_AFTER_S:
                    attempt, short = 0, 0
                elif up > 0:  # accepted, then closed soon: flapping keeps backing off instead of hammering
                    short += 1
                    if short == FLAP_HINT_AFTER:
                        log.warning("mqtt: the broker closed %d connections in a row soon after accepting them; "
                                    "is another client using client id %r? give each agent its own "
                                    "mqtt.client_id", short, self.settings.client_id)
            except Exception:  # an unexpected paho error must not end reconnecting for good; logged with its trace
                self.counters["manager_errors"] += 1
                log.exception("mqtt: unexpected error in the connection cycle; starting over")
            if self._stop.is_set():
                break
            delay = backoff_delay(attempt, self.settings.backoff_min_s, self.settings.backoff_max_s, self._rand)
            attempt += 1
            log.debug("mqtt: next connection attempt in %.1f s", delay)
            self._stop.wait(delay)

    def _cycle(self) -> float:
        """One connection: connect, supervise until it drops, tear down. Returns how long it was up (s)."""
        client, gen, session = self._new_client()
        up = 0.0
        try:
            if self._connect(client, gen, session):
                t0 = time.monotonic()
                self._supervise(client, gen)
                up = time.monotonic() - t0
            else:
                self.counters["connect_failures"] += 1
        finally:
            self._teardown(client, gen)
        return up

    @property
    def alive(self) -> bool:
        """The connection thread runs (it never gives up while the client is not stopped)."""
        return bool(self._threads) and self._threads[0].is_alive()

    @property
    def heartbeat_limit_s(self) -> float:
        """How long the connection thread's heartbeat may stand still before it counts as hung."""
        s = self.settings
        return s.backoff_max_s + 2 * s.connect_timeout_s + TEARDOWN_JOIN_S + HEARTBEAT_MARGIN_S

    def healthy(self, now: float | None = None) -> bool:
        """The connection thread runs and made progress within `heartbeat_limit_s` (a hung thread that would
        never reconnect again is not healthy). `now` is a `time.monotonic()` value."""
        now = time.monotonic() if now is None else now
        return self.alive and now - self.heartbeat <= self.heartbeat_limit_s

    def _put_event(self, event: Connected | Disconnected) -> None:
        """From the connection thread: wait for room (the relay drains `events` continuously) unless stopping."""
        while True:
            try:
                self.events.put(event, timeout=EVENT_PUT_POLL_S)
                return
            except queue.Full:
                if self._stop.is_set():
                    return

    def _new_client(self) -> tuple[paho.Client, int, str]:
        s = self.settings
        with self._lock:
            self._generation += 1
            gen = self._generation
        session = f"{int(time.time())}-{gen}-{secrets.token_hex(3)}"
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=s.client_id, protocol=paho.MQTTv5,
                        reconnect_on_failure=False)
        c.connect_timeout = s.connect_timeout_s
        if s.username:
            c.username_pw_set(s.username, s.password)
        if s.tls:
            ctx = ssl.create_default_context(cafile=s.ca_file)  # verification and hostname check stay on
            if s.tls_insecure:
                log.warning("mqtt: TLS certificate verification is OFF (tls.insecure); use this only for testing")
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if s.cert_file:
                ctx.load_cert_chain(s.cert_file, s.key_file)
            c.tls_set_context(ctx)
        c.will_set(self.topics.status(), payloads.agent_status("offline", session, time.time(),
                                                                version=s.version), qos=1, retain=True)
        dropped = threading.Event()
        self._dropped_evt[gen] = dropped
        suback = self._suback_evt[gen] = threading.Event()
        connack: queue.Queue[tuple[bool, str, int]] = queue.Queue(1)

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, props: Any) -> None:
            rm = getattr(props, "ReceiveMaximum", 65535) if props is not None else 65535
            connack.put_nowait((not reason.is_failure, str(reason), int(rm)))

        def on_disconnect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if not dropped.is_set():  # the first reason wins (and a torn-down connection leaves no entry behind)
                self._drop_reason[gen] = (int(getattr(reason, "value", 0) or 0), str(reason))
            dropped.set()

        def on_publish(_c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
            self._outstanding.pop((gen, mid), None)
            try:
                self.events.put_nowait(PubAck(gen, mid, int(reason.value)))
            except queue.Full:  # the relay is not keeping up: replace the connection so its rows are sent again
                self.counters["events_dropped"] += 1
                if not dropped.is_set():
                    self._drop_reason[gen] = (0, "relay event queue full; unacknowledged rows will be sent again")
                dropped.set()

        def on_message(_c: Any, _u: Any, msg: Any) -> None:
            try:
                self._inbound.put_nowait((gen, msg))
            except queue.Full:
                self.counters["inbound_dropped"] += 1

        c.on_connect, c.on_disconnect, c.on_publish, c.on_message = on_connect, on_disconnect, on_publish, on_message
        c.on_subscribe = lambda *_a: suback.set()
        c._matthan_connack = connack  # type: ignore[attr-defined]  # our own attribute, read by _connect
        return c, gen, session

    def _connect(self, client: paho.Client, gen: int, session: str) -> bool:
        s = self.settings
        try:
            client.connect(s.host, s.port, keepalive=s.keepalive_s, clean_start=True)
        except CONNECT_ERRORS as e:
            self._failed(logging.WARNING, "cannot connect to %s:%s: %s", s.host, s.port, e)
            return False
        client.loop_start()
        try:
            ok, why, receive_max = client._matthan_connack.get(timeout=s.connect_timeout_s)  # type: ignore[attr-defined]
        except queue.Empty:
            self._failed(logging.WARNING, "%s:%s accepted TCP but sent no CONNACK within %.0f s (hung broker?)",
                         s.host, s.port, s.connect_timeout_s)
            return False
        if not ok:
            self._failed(logging.ERROR, "broker %s:%s refused the connection: %s (check username/password and ACL)",
                         s.host, s.port, why)
            return False
        with self._lock:
            self._client, self._connected_gen, self._session = client, gen, session
        self.counters["connects"] += 1
        if self._down_since is not None:
            log.info("mqtt: connected to %s:%s (session %s) after %.0f s and %d failed attempts", s.host, s.port,
                     session, time.monotonic() - self._down_since, self._failures)
        else:
            log.info("mqtt: connected to %s:%s (session %s)", s.host, s.port, session)
        self._down_since, self._failures = None, 0
        client.publish(self.topics.status(), payloads.agent_status("online", session, time.time(),
                                                                   version=s.version), qos=1, retain=True)
        filters = [(f, SubscribeOptions(qos=q, noLocal=True)) for f, q, _ in self._handlers]
        if filters:
            client.subscribe(filters)
        with self._lock:
            state = list(self._retained.items())
        for topic, payload in state:
            client.publish(topic, payload, qos=1, retain=True)
        self._put_event(Connected(gen, session, receive_max))
        for handler in self._on_connected:
            try:
                handler(session)
            except Exception:  # a hook's bug must not stop the connection thread; logged with its trace
                log.exception("mqtt: on_connected hook failed")
        return True

    def _failed(self, level: int, fmt: str, *args: object) -> None:
        """One line at the first failure of an outage and a reminder every FAIL_LOG_EVERY_S; the rest at debug."""
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
        self._failures += 1
        if self._failures == 1 or now - self._last_fail_log >= FAIL_LOG_EVERY_S:
            self._last_fail_log = now
            log.log(level, "mqtt: " + fmt + " (down %.0f s, %d attempts; retrying with backoff)", *args,
                    now - self._down_since, self._failures)
        else:
            log.debug("mqtt: " + fmt, *args)

    def _supervise(self, client: paho.Client, gen: int) -> None:
        """Wait for a drop or stop; the watchdog drops a connection whose broker stopped acknowledging."""
        dropped = self._dropped_evt[gen]
        limit = self.settings.stall_limit_s
        while not self._stop.is_set() and not dropped.wait(0.5):
            now = self.heartbeat = time.monotonic()
            oldest = min((t for (g, _), t in list(self._outstanding.items()) if g == gen), default=now)
            if now - oldest > limit:
                self.counters["watchdog_kicks"] += 1
                log.warning("mqtt: no PUBACK for %.0f s on an open connection; dropping it and reconnecting",
                            now - oldest)
                break
        if dropped.is_set():
            code, why = self._drop_reason.get(gen, (0, "unknown"))
            hint = (" — another client connected with the same client id; give each agent its own mqtt.client_id"
                    if code == SESSION_TAKEN_OVER else "")
            log.warning("mqtt: connection to %s:%s lost (%s)%s", self.settings.host, self.settings.port, why, hint)
        if not self._stop.is_set() and self._down_since is None:
            self._down_since = time.monotonic()

    def _teardown(self, client: paho.Client, gen: int) -> None:
        with self._lock:
            was = self._connected_gen == gen
            if self._client is client:
                self._client = None
            if was:
                self._connected_gen = 0
        if was:
            self.counters["disconnects"] += 1
            self._put_event(Disconnected(gen, "stop" if self._stop.is_set() else "lost"))
        for key in [k for k in list(self._outstanding) if k[0] == gen]:
            self._outstanding.pop(key, None)
        if (dropped := self._dropped_evt.pop(gen, None)) is not None:
            dropped.set()  # paho's late on_disconnect (from finish() below) then leaves no _drop_reason entry behind
        self._suback_evt.pop(gen, None)
        self._drop_reason.pop(gen, None)

        def finish() -> None:
            with contextlib.suppress(Exception):  # paho may raise anything from a half-dead socket; we drop it
                client.disconnect()
            client.loop_stop()

        t = threading.Thread(target=finish, name=f"mqtt-teardown-{gen}", daemon=True)
        t.start()
        t.join(TEARDOWN_JOIN_S)
        if t.is_alive():
            self.counters["leaked_threads"] += 1
            log.error("mqtt: old paho client %d did not stop within %.0f s; abandoned", gen, TEARDOWN_JOIN_S)

    # ---- inbound ----------------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        while not self._stop.is_set():
            try:
                _gen, msg = self._inbound.get(timeout=0.2)
            except queue.Empty:
                continue
            props = getattr(msg, "properties", None)
            item = InboundMessage(
                topic=msg.topic, payload=bytes(msg.payload), retain=bool(msg.retain),
                response_topic=getattr(props, "ResponseTopic", None),
                correlation_data=getattr(props, "CorrelationData", None))
            for topic_filter, _qos, handler in self._handlers:
                if paho.topic_matches_sub(topic_filter, item.topic):
                    try:
                        handler(item)
                    except Exception:  # a handler bug must not kill the inbound thread; it is logged with its trace
                        log.exception("mqtt: handler for %s failed", topic_filter)


def publish_properties(user: list[tuple[str, str]] | None = None,
                       correlation: bytes | None = None) -> Properties | None:
    """v5 PUBLISH properties for the relay (None when there is nothing to add, to keep packets small)."""
    if not user and correlation is None:
        return None
    p = Properties(PacketTypes.PUBLISH)
    if user:
        p.UserProperty = user
    if correlation is not None:
        p.CorrelationData = correlation
    return p
