"""The private LAN rig: multicast crosses the veth cable, and nothing is left behind."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys

import pytest

from agent.simulator.netns import AGENT_IP, NETNS_DIR, Lan

pytestmark = pytest.mark.netns

GROUP, PORT = "239.255.255.250", 3702


def _multicast_listener(ip: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("", PORT))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack("4s4s", socket.inet_aton(GROUP),
                                                                              socket.inet_aton(ip)))
    sock.settimeout(5)
    return sock


def _send_probe(payload: bytes) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(AGENT_IP))
    sock.sendto(payload, (GROUP, PORT))
    sock.close()


def test_netns_multicast_crosses_from_agent_to_cameras(lan: Lan) -> None:
    """A datagram sent to the WS-Discovery group in the agent namespace reaches a listener on the camera side."""
    cam_ip = lan.add_camera_ip()
    listener = lan.call(lan.camera_ns, _multicast_listener, cam_ip)
    try:
        lan.call(lan.agent_ns, _send_probe, b"hello-cameras")
        data, (src, _port) = listener.recvfrom(2048)
    finally:
        listener.close()
    assert data == b"hello-cameras"
    assert src == AGENT_IP


def _listen_tcp(ip: str) -> socket.socket:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind((ip, 0))
    srv.listen(1)
    return srv


def _connect_and_send(ip: str, port: int) -> None:
    with socket.create_connection((ip, port), timeout=5) as conn:
        conn.sendall(b"over-the-veth")


def test_netns_unicast_reaches_camera_address_only_inside(lan: Lan) -> None:
    """A TCP connection from the agent namespace reaches a camera address; the root namespace has no such address."""
    cam_ip = lan.add_camera_ip()
    srv = lan.call(lan.camera_ns, _listen_tcp, cam_ip)
    try:
        lan.call(lan.agent_ns, _connect_and_send, cam_ip, srv.getsockname()[1])
        srv.settimeout(5)
        conn, (peer, _port) = srv.accept()
        with conn:
            assert conn.recv(64) == b"over-the-veth"
    finally:
        srv.close()
    assert peer == AGENT_IP
    addrs = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    assert cam_ip not in addrs


def test_netns_close_removes_namespaces_and_processes() -> None:
    """Closing the LAN terminates processes started in it and deletes both namespaces."""
    with Lan() as net:
        proc = net.popen(net.camera_ns, [sys.executable, "-c", "import time; time.sleep(60)"])
        names = (net.agent_ns, net.camera_ns)
        assert all(os.path.exists(os.path.join(NETNS_DIR, n)) for n in names)
    assert proc.poll() is not None
    assert not any(os.path.exists(os.path.join(NETNS_DIR, n)) for n in names)


def test_netns_camera_ip_outside_subnet_is_refused(lan: Lan) -> None:
    """Only addresses of the private test subnet may be added, so no real network address is ever used."""
    with pytest.raises(ValueError, match="outside the private test subnet"):
        lan.add_camera_ip("192.168.1.10")
