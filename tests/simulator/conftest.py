"""Fixtures for simulator tests: clusters in loopback mode and in a private namespace, stopped even on failure."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest

from agent.simulator.netns import Lan
from agent.simulator.rtsp import rtsp_unavailable_reason
from agent.simulator.scenario import Scenario, parse_scenario

_RTSP_REASON: list[str | None] = []


def _rtsp_reason() -> str | None:
    if not _RTSP_REASON:
        _RTSP_REASON.append(rtsp_unavailable_reason())
    return _RTSP_REASON[0]


def scenario(n: int = 1, **camera_overrides: object) -> Scenario:
    """n default cameras; keyword arguments override fields of every camera (quirks as a list)."""
    return parse_scenario({"defaults": dict(camera_overrides)} if camera_overrides else {}, cameras=n)


@pytest.fixture
def make_cluster() -> Iterator[Callable[..., object]]:
    """Start clusters inside the test; every one is closed at teardown, also when the test fails half-way."""
    from agent.simulator.cluster import Cluster

    reason = _rtsp_reason()
    if reason:
        pytest.skip(reason)
    started: list[Cluster] = []

    def start(sc: Scenario, *, lan: Lan | None = None) -> Cluster:
        cluster = Cluster(sc, lan=lan, loopback=lan is None)
        started.append(cluster)
        return cluster.start()

    yield start
    for cluster in started:
        cluster.close()


def unicast_probe(ip: str, port: int, *, types: str = "dn:NetworkVideoTransmitter", wait_s: float = 2.0,
                  expect: int = 1) -> tuple[str, list[bytes]]:
    """Send one WS-Discovery Probe by unicast; return its MessageID and the replies collected."""
    mid = f"urn:uuid:{uuid.uuid4()}"
    probe = (
        '<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
        'xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><s:Header>'
        f"<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action><a:MessageID>{mid}</a:MessageID>"
        "<a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header>"
        f"<s:Body><d:Probe><d:Types>{types}</d:Types></d:Probe></s:Body></s:Envelope>"
    ).encode()
    replies: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(wait_s)
        sock.sendto(probe, (ip, port))
        try:
            while True:
                data, _ = sock.recvfrom(65535)
                replies.append(data)
                if len(replies) > expect:
                    break
        except TimeoutError:
            pass
    return mid, replies


@contextlib.contextmanager
def hello_bye_listener(lan: Lan) -> Iterator[list[tuple[str, str]]]:
    """A third-party `wsdiscovery` listener in the agent namespace; yields the ("hello"|"bye", endpoint) it hears."""
    from wsdiscovery.discovery import ThreadedWSDiscovery

    events: list[tuple[str, str]] = []
    ready, done = threading.Event(), threading.Event()

    def listen() -> None:
        wsd = ThreadedWSDiscovery()
        wsd.setRemoteServiceHelloCallback(lambda s: events.append(("hello", s.getEPR())))
        wsd.setRemoteServiceByeCallback(lambda epr: events.append(("bye", epr)))
        wsd.start()
        ready.set()
        done.wait(60)
        wsd.stop()

    thread = lan.start_thread(lan.agent_ns, listen)
    try:
        assert ready.wait(10), "the wsdiscovery listener did not start"
        yield events
    finally:
        done.set()
        thread.join(10)
