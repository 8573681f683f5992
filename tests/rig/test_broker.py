"""The broker rig itself: real publish/receive on every variant, refusals, and persistence across restarts."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from tests.rig.broker import Broker, Collector

pytestmark = pytest.mark.broker


def _connect_result(broker: Broker, **kwargs: Any) -> tuple[bool, str]:
    """Connect once with a client built by the test and report (accepted, reason) without retrying."""
    done = threading.Event()
    result: dict[str, Any] = {}
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, reconnect_on_failure=False)
    if "user" in kwargs:
        c.username_pw_set(kwargs["user"], kwargs["password"])
    if "ca" in kwargs:
        c.tls_set_context(ssl.create_default_context(cafile=str(kwargs["ca"])))

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        result["ok"], result["reason"] = not reason.is_failure, str(reason)
        done.set()

    def on_disconnect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        result.setdefault("ok", False)
        result.setdefault("reason", f"disconnected: {reason}")
        done.set()

    c.on_connect = on_connect
    c.on_disconnect = on_disconnect
    try:
        c.connect(broker.host, broker.port, keepalive=5)
    except (ssl.SSLError, OSError) as e:
        return False, f"{type(e).__name__}: {e}"
    c.loop_start()
    try:
        if not done.wait(kwargs.get("wait", 10)):
            return False, "no CONNACK"
        return result["ok"], result["reason"]
    finally:
        c.disconnect()
        c.loop_stop()


def _roundtrip(broker: Broker) -> None:
    col = Collector(broker, "rig/#")
    try:
        pub = broker.client("pub")
        info = pub.publish("rig/hello", b"xin chao", qos=1)
        info.wait_for_publish(10)
        assert col.wait_for(lambda m: any(x.payload == b"xin chao" for x in m), 10), broker.log_tail()
        pub.disconnect()
        pub.loop_stop()
    finally:
        col.close()


@pytest.mark.parametrize("variant", ["anonymous", "auth", "tls"])
def test_broker_roundtrip_every_variant(broker_factory: Callable[..., Broker], variant: str) -> None:
    """A QoS 1 message published on each variant reaches a subscriber on the same broker."""
    b = broker_factory(variant)
    assert b.variant == variant and b.port > 0
    _roundtrip(b)


def test_broker_tls_wrong_ca_refused(tls_broker: Broker, tls_material: Any) -> None:
    """A TLS client that trusts another CA cannot connect (certificate verification fails)."""
    ok, why = _connect_result(tls_broker, ca=tls_material.other_ca_cert)
    assert not ok and "CERTIFICATE_VERIFY_FAILED" in why
    ok, why = _connect_result(tls_broker, ca=tls_material.ca_cert)
    assert ok, why


def test_broker_wrong_password_refused(auth_broker: Broker) -> None:
    """A wrong password gets a failing CONNACK; the right one is accepted."""
    ok, why = _connect_result(auth_broker, user="agent", password="not-the-password")
    assert not ok, why
    ok, why = _connect_result(auth_broker, user="agent", password=auth_broker.users["agent"])
    assert ok, why


def test_broker_acl_denies_topic(broker_factory: Callable[..., Broker]) -> None:
    """An ACL without write access to a topic makes a v5 PUBACK carry 0x87 (not authorized)."""
    b = broker_factory("auth", acl="user agent\ntopic read #\ntopic write ok/#\n\nuser station\ntopic readwrite #\n")
    c = b.client("acl")
    codes: dict[int, int] = {}
    got = threading.Event()

    def on_publish(client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        codes[mid] = reason.value
        if len(codes) == 2:
            got.set()

    c.on_publish = on_publish
    denied = c.publish("denied/x", b"1", qos=1).mid
    allowed = c.publish("ok/x", b"1", qos=1).mid
    assert got.wait(10)
    assert codes[denied] == 0x87 and codes[allowed] in (0x00, 0x10)
    c.disconnect()
    c.loop_stop()


def test_broker_restart_keeps_persistent_session(broker: Broker) -> None:
    """Messages queued for an offline persistent session survive a graceful restart of the broker."""
    col = Collector(broker, "keep/#", client_id="station-keep", session_expiry=3600)
    col.close()
    pub = broker.client("pub")
    for i in range(5):
        pub.publish(f"keep/{i}", str(i).encode(), qos=1).wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()
    broker.restart()
    col = Collector(broker, "keep/#", client_id="station-keep", session_expiry=3600)
    try:
        assert col.wait_for(lambda m: len(m) >= 5, 10), broker.log_tail()
        assert sorted(m.payload for m in col.messages) == [b"0", b"1", b"2", b"3", b"4"]
    finally:
        col.close()


def test_broker_crash_hang_resume_restart(broker: Broker) -> None:
    """crash() kills the process, start() brings it back on the same port; hang()/resume() freeze and thaw it."""
    port = broker.port
    broker.hang()
    ok, why = _connect_result(broker, wait=1.5)
    assert not ok and why == "no CONNACK"
    broker.resume()
    ok, why = _connect_result(broker)
    assert ok, why
    broker.crash()
    assert not broker.running
    broker.start()
    assert broker.port == port and broker.running
    ok, why = _connect_result(broker)
    assert ok, why


def test_broker_tls_client_certificate_required(broker_factory: Callable[..., Broker], tls_material: Any) -> None:
    """With require_client_cert, a client without a certificate is refused and one with the CA-signed cert is not."""
    b = broker_factory("tls", require_client_cert=True)
    ok, why = _connect_result(b, ca=tls_material.ca_cert)
    assert not ok, why
    _roundtrip(b)  # Broker.client() presents the client certificate


def test_broker_set_acl_reloads(auth_broker: Broker) -> None:
    """set_acl() replaces the ACL of a running broker: a topic allowed before is refused (0x87) afterwards."""
    assert auth_broker.credentials == ("agent", auth_broker.users["agent"])
    c = auth_broker.client("acl-reload")
    codes: list[int] = []
    got = threading.Event()

    def on_publish(client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        codes.append(reason.value)
        got.set()

    c.on_publish = on_publish
    try:
        c.publish("x/1", b"1", qos=1)
        assert got.wait(10) and codes[-1] < 0x80
        auth_broker.set_acl("user agent\ntopic read #\n\nuser station\ntopic readwrite #\n")
        got.clear()
        c.publish("x/1", b"2", qos=1)
        assert got.wait(10) and codes[-1] == 0x87
    finally:
        c.disconnect()
        c.loop_stop()
