"""The station-side `Collector` fails on close when a received message carries a known test password."""

from __future__ import annotations

import pytest

from tests.cli_tools.secret_scan import TEST_PASSWORDS
from tests.rig.broker import DEFAULT_USERS, E2E_USERS, Broker, Collector


def _publish(broker: Broker, topic: str, payload: bytes) -> None:
    pub = broker.client("rig-pub")
    try:
        pub.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        pub.loop_stop()
        pub.disconnect()


def test_collector_close_fails_on_password_in_payload(broker: Broker) -> None:
    """A payload quoting the broker password makes close() raise, naming the password and the topic."""
    col = Collector(broker, "scan/#")
    _publish(broker, "scan/clean", b'{"ok": true}')
    _publish(broker, "scan/leak", b'{"uri": "mqtt://agent:agent-pass-1@broker"}')
    assert col.wait_for(lambda ms: len(ms) == 2, 10)
    with pytest.raises(AssertionError, match=r"agent-pass-1.*scan/leak"):
        col.close()


def test_collector_close_passes_clean_traffic(broker: Broker) -> None:
    """Messages without a test password close quietly."""
    col = Collector(broker, "scan/#")
    _publish(broker, "scan/one", b"motion start, no secrets")
    assert col.wait_for(lambda ms: len(ms) == 1, 10)
    col.close()
    assert col.password_leaks() == []


def test_secret_scan_knows_every_broker_password() -> None:
    """Both broker account sets (rig default and end-to-end) are in the run-wide password list."""
    assert {*DEFAULT_USERS.values(), *E2E_USERS.values()} <= TEST_PASSWORDS
