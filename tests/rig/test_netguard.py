"""The suite's network guard (tests/rig/netguard.py): off-loopback traffic from the root namespace is blocked
before it is sent and recorded against the test; loopback and a test's own namespaces are free."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.simulator.netns import Lan
from tests.rig import netguard
from tests.rig.broker import free_port

TEST_NET_1 = "192.0.2.1"  # RFC 5737 documentation address: routed nowhere
DOC_V6 = "2001:db8::1"  # RFC 3849 documentation address


@pytest.fixture
def expect_violations() -> Iterator[list[netguard.Violation]]:
    """Hand the violations a test provokes on purpose to the test, so the suite's guard does not fail it."""
    taken: list[netguard.Violation] = []
    yield taken
    assert not netguard.take_violations(), "a violation was provoked after the test took them"


def test_netguard_blocks_connect_to_test_net_before_it_happens(expect_violations: list) -> None:
    """A connect to 192.0.2.1 raises from the hook (the socket stays unconnected) and is recorded."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setblocking(False)
        with pytest.raises(netguard.NetworkGuardViolation, match=r"192\.0\.2\.1"):
            s.connect((TEST_NET_1, 9))
        with pytest.raises(OSError):
            s.getpeername()  # the kernel never saw the connect
    expect_violations.extend(netguard.take_violations())
    assert [(v.event, v.address) for v in expect_violations] == [("socket.connect", (TEST_NET_1, 9))]


def test_netguard_blocks_udp_multicast_and_ipv6_sends(expect_violations: list) -> None:
    """A WS-Discovery-style multicast sendto and an IPv6 connect off loopback are both blocked."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        with pytest.raises(netguard.NetworkGuardViolation):
            u.sendto(b"probe", ("239.255.255.250", 3702))
        with pytest.raises(netguard.NetworkGuardViolation):
            u.sendmsg([b"probe"], [], 0, (TEST_NET_1, 3702))
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
        s6.setblocking(False)
        with pytest.raises(netguard.NetworkGuardViolation):
            s6.connect_ex((DOC_V6, 9, 0, 0))
    expect_violations.extend(netguard.take_violations())
    assert [v.event for v in expect_violations] == ["socket.sendto", "socket.sendmsg", "socket.connect"]


def test_netguard_records_a_violation_the_code_swallowed(expect_violations: list) -> None:
    """Code that catches every exception around a connect still leaves a record for the test's teardown."""
    def careless() -> None:
        with socket.socket() as s, contextlib.suppress(Exception):  # code under test that swallows everything
            s.connect((TEST_NET_1, 80))

    t = threading.Thread(target=careless, name="careless")
    t.start()
    t.join(5)
    expect_violations.extend(netguard.take_violations())
    assert [v.thread for v in expect_violations] == ["careless"]


def test_netguard_lets_loopback_and_unix_sockets_through(tmp_path: Path) -> None:
    """127.0.0.0/8, ::1, localhost and unix sockets are not blocked (the connects get a plain refusal)."""
    port = free_port()
    for family, address in ((socket.AF_INET, ("127.0.0.1", port)), (socket.AF_INET, ("127.8.9.10", port)),
                            (socket.AF_INET, ("localhost", port)), (socket.AF_INET6, ("::1", port))):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            assert s.connect_ex(address) != 0  # nobody listens: refused by the kernel, not by the guard
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as tx:
        rx.bind(str(tmp_path / "sock"))
        tx.sendto(b"x", str(tmp_path / "sock"))
        assert rx.recv(1) == b"x"
    assert netguard.take_violations() == []


@pytest.mark.netns
def test_netguard_allows_traffic_inside_a_test_namespace(lan: Lan) -> None:
    """A thread that joined the test's own agent namespace may send to the camera subnet; the same send from the
    root namespace is blocked."""
    camera_ip = lan.add_camera_ip()

    def probe() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.sendto(b"hello", (camera_ip, 9))

    lan.run_in(lan.agent_ns, probe)
    assert netguard.take_violations() == []
    with pytest.raises(netguard.NetworkGuardViolation):
        probe()
    assert [v.address for v in netguard.take_violations()] == [(camera_ip, 9)]


def test_netguard_destination_rules() -> None:
    """Loopback in every spelling is local; documentation, private, multicast and named hosts are not."""
    local = ["127.0.0.1", "127.255.0.1", "::1", "::ffff:127.0.0.1", "localhost", "", "0.0.0.0", b"127.0.0.1"]
    remote = ["192.0.2.1", "10.0.0.5", "198.18.0.11", "239.255.255.250", "2001:db8::1", "fe80::1%lo",
              "example.com", "255.255.255.255"]
    assert [h for h in local if not netguard.is_local_destination(h)] == []
    assert [h for h in remote if netguard.is_local_destination(h)] == []
