"""WS-Discovery in our own code: multicast and unicast Probe, and a Hello/Bye listener, on asyncio.

Why not the PyPI `wsdiscovery` package: it cannot be told which interface to use, ignores loopback, polls its
sockets at 10 Hz from threads and skips Bye on stop. Here every socket is bound to one interface address and
driven by the asyncio loop the ONVIF thread already runs; nothing polls.

Probe (SOAP 1.2, WS-Discovery 2005/04, as ONVIF Core 7.3 requires): one for `dn:NetworkVideoTransmitter` and
one for `tds:Device` (some NVRs and doorbells only answer the latter), each sent PROBE_REPEAT times with TTL 1
to 239.255.255.250:3702 from a socket bound to the interface with IP_MULTICAST_IF set. Replies come back by
unicast to that socket during the window; each is parsed by parse.py, checked against our MessageIDs and
deduplicated by EndpointReference.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import socket
import struct
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from agent.discovery.parse import (
    Endpoint,
    MessageKind,
    ParseError,
    WsdMessage,
    choose_xaddr,
    parse_datagram,
)
from agent.discovery.results import Discovered, Via, WsdEvent, WsdEventKind
from agent.discovery.settings import PROBE_GAP_S, PROBE_REPEAT, PROBE_WINDOW_S, split_target

log = logging.getLogger(__name__)

WSD_GROUP = "239.255.255.250"
WSD_PORT = 3702
MULTICAST_TTL = 1  # the LAN only: a probe must never be routed off the village network
RECV_BUFFER = 256 * 1024  # 40 cameras answering within ~0.5 s, ~3 KiB each, twice (quirk): ~240 KiB

NS_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS_WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
ACTION_PROBE = "http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe"
TO_DISCOVERY = "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
NS_DN = "http://www.onvif.org/ver10/network/wsdl"
NS_TDS = "http://www.onvif.org/ver10/device/wsdl"
PROBE_TYPES = (("dn", NS_DN, "NetworkVideoTransmitter"), ("tds", NS_TDS, "Device"))


def build_probe(message_id: str, prefix: str, namespace: str, type_name: str) -> bytes:
    """A SOAP 1.2 WS-Discovery Probe for one type, with the type's prefix declared where it is used."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{NS_SOAP12}" xmlns:a="{NS_WSA}" xmlns:d="{NS_WSD}" xmlns:{prefix}="{namespace}">'
        "<s:Header>"
        f"<a:Action s:mustUnderstand=\"1\">{ACTION_PROBE}</a:Action>"
        f"<a:MessageID>{message_id}</a:MessageID>"
        f"<a:To s:mustUnderstand=\"1\">{TO_DISCOVERY}</a:To>"
        "</s:Header>"
        f"<s:Body><d:Probe><d:Types>{prefix}:{type_name}</d:Types></d:Probe></s:Body>"
        "</s:Envelope>"
    ).encode()


def new_probes() -> dict[str, bytes]:
    """Fresh probes, keyed by their MessageID (urn:uuid:<uuid4>)."""
    probes = {}
    for prefix, namespace, type_name in PROBE_TYPES:
        message_id = f"urn:uuid:{uuid.uuid4()}"
        probes[message_id] = build_probe(message_id, prefix, namespace, type_name)
    return probes


@dataclass(frozen=True, slots=True)
class Interface:
    name: str
    ip: str


def list_interfaces(wanted: Iterable[str] = ()) -> list[Interface]:
    """IPv4 interfaces to probe on: the named ones (by name or address), else every non-loopback one that is up.

    Read in the calling thread's network namespace (psutil asks the kernel through a socket created here).
    Raises ValueError naming a wanted interface that does not exist, so the installer sees the typo.
    """
    import psutil  # heavy-ish; only needed here

    stats = psutil.net_if_stats()
    found: list[Interface] = []
    for name, addrs in psutil.net_if_addrs().items():
        for addr in addrs:
            if addr.family == socket.AF_INET:
                found.append(Interface(name, addr.address))
    wanted = list(wanted)
    if wanted:
        chosen = []
        for want in wanted:
            match = [i for i in found if want in (i.name, i.ip)]
            if not match:
                names = ", ".join(sorted({f"{i.name} ({i.ip})" for i in found})) or "none"
                raise ValueError(f"no IPv4 interface named {want!r}; this host has: {names}")
            chosen.extend(m for m in match if m not in chosen)
        return chosen
    return [
        i
        for i in found
        if not ipaddress.IPv4Address(i.ip).is_loopback and (i.name not in stats or stats[i.name].isup)
    ]


@dataclass
class ProbeStats:
    """Counters for health and for the technician: junk on the LAN is counted, never silently dropped."""

    sent: int = 0
    send_errors: int = 0
    received: int = 0
    rejected: int = 0  # not parseable / hostile
    foreign: int = 0  # a reply to someone else's probe (RelatesTo not ours)
    duplicates: int = 0
    last_reject_reason: str = ""


def endpoint_to_discovered(ep: Endpoint, source_ip: str, via: Via, interface: str | None) -> Discovered:
    return Discovered(
        ip=source_ip,
        xaddr=choose_xaddr(ep.xaddrs, source_ip),
        via=via,
        endpoint_uuid=ep.uuid,
        endpoint_address=ep.address,
        name=ep.scope_value("name"),
        hardware=ep.scope_value("hardware"),
        location=ep.scope_value("location"),
        types=ep.types,
        scopes=ep.scopes,
        advertised_xaddrs=ep.xaddrs,
        interface=interface,
    )


class _ProbeProtocol(asyncio.DatagramProtocol):
    """Collects ProbeMatches for our MessageIDs. Never raises out of datagram_received."""

    def __init__(self, collector: _Collector, via: Via, interface: str | None) -> None:
        self.collector = collector
        self.via = via
        self.interface = interface

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.collector.feed(data, addr[0], self.via, self.interface)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a unicast target that has no WS-Discovery: expected, counted.
        self.collector.stats.send_errors += 1
        log.debug("probe socket error: %s", exc)


@dataclass
class _Collector:
    message_ids: set[str]
    stats: ProbeStats = field(default_factory=ProbeStats)
    found: dict[str, Discovered] = field(default_factory=dict)
    on_found: Callable[[Discovered], None] | None = None

    def feed(self, data: bytes, source_ip: str, via: Via, interface: str | None) -> None:
        self.stats.received += 1
        try:
            msg = parse_datagram(data)
        except ParseError as exc:
            self.stats.rejected += 1
            self.stats.last_reject_reason = exc.reason
            log.debug("rejected datagram from %s: %s", source_ip, exc.reason)
            return
        if msg.kind is not MessageKind.PROBE_MATCHES:
            return
        # A missing RelatesTo is tolerated (some firmwares omit it); a different one is someone else's probe.
        if msg.relates_to is not None and msg.relates_to not in self.message_ids:
            self.stats.foreign += 1
            return
        for ep in msg.endpoints:
            key = ep.key
            if key in self.found:
                self.stats.duplicates += 1
                continue
            self.found[key] = dev = endpoint_to_discovered(ep, source_ip, via, interface)
            if self.on_found is not None:
                self.on_found(dev)  # e.g. start interrogating now instead of after the window


def _multicast_socket(iface_ip: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        sock.bind((iface_ip, 0))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface_ip))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, MULTICAST_TTL)
    except OSError:
        sock.close()
        raise
    return sock


def _unicast_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
    sock.bind(("0.0.0.0", 0))
    return sock


@dataclass(frozen=True, slots=True)
class ProbeResult:
    devices: tuple[Discovered, ...]
    stats: ProbeStats
    interfaces: tuple[Interface, ...]


async def probe(
    interfaces: Iterable[Interface] | None = None,
    *,
    window_s: float = PROBE_WINDOW_S,
    unicast_targets: Iterable[str] = (),
    repeat: int = PROBE_REPEAT,
    multicast: bool = True,
    on_found: Callable[[Discovered], None] | None = None,
) -> ProbeResult:
    """Probe for ONVIF devices and collect answers for `window_s` seconds.

    `interfaces=None` means every non-loopback IPv4 interface (see list_interfaces). `unicast_targets` get the
    same probes by unicast, to port 3702 unless given as "IP:port" (wifi routers often drop multicast).
    `on_found` is called on the loop, once per new device, as soon as its answer arrives (it must not block).
    Raises OSError only when no socket at all could be opened.
    """
    loop = asyncio.get_running_loop()
    if interfaces is None:
        interfaces = list_interfaces() if multicast else ()
    ifaces = tuple(interfaces)
    targets = tuple(dict.fromkeys(unicast_targets))
    probes = new_probes()
    collector = _Collector(set(probes), on_found=on_found)
    transports: list[tuple[asyncio.DatagramTransport, list[tuple[str, int]]]] = []
    try:
        if multicast:
            for iface in ifaces:
                try:
                    sock = _multicast_socket(iface.ip)
                except OSError as exc:
                    log.warning("cannot probe on %s (%s): %s", iface.name, iface.ip, exc)
                    continue
                tr, _ = await loop.create_datagram_endpoint(
                    lambda i=iface: _ProbeProtocol(collector, Via.MULTICAST, i.name), sock=sock
                )
                transports.append((tr, [(WSD_GROUP, WSD_PORT)]))
        if targets:
            tr, _ = await loop.create_datagram_endpoint(
                lambda: _ProbeProtocol(collector, Via.UNICAST, None), sock=_unicast_socket()
            )
            transports.append((tr, [split_target(t, WSD_PORT) for t in targets]))
        if not transports and (ifaces or targets):
            raise OSError("no WS-Discovery socket could be opened on any interface")
        deadline = loop.time() + window_s
        for n in range(repeat):
            for tr, dests in transports:
                for dest in dests:
                    for payload in probes.values():
                        try:
                            tr.sendto(payload, dest)
                            collector.stats.sent += 1
                        except OSError as exc:
                            collector.stats.send_errors += 1
                            log.debug("probe to %s failed: %s", dest[0], exc)
            if n + 1 < repeat:
                await asyncio.sleep(min(PROBE_GAP_S, max(0.0, deadline - loop.time())))
        await asyncio.sleep(max(0.0, deadline - loop.time()))
    finally:
        for tr, _dests in transports:
            tr.close()
    # Unicast answers may repeat a multicast one; the first (multicast) entry wins, both carry the same uuid.
    return ProbeResult(tuple(collector.found.values()), collector.stats, ifaces)


class ListenerState(enum.Enum):
    STOPPED = "stopped"
    LISTENING = "listening"
    CLOSED = "closed"


class _ListenProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: HelloListener) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.owner._feed(data, addr[0])

    def error_received(self, exc: Exception) -> None:
        log.debug("hello listener socket error: %s", exc)


class HelloListener:
    """Hears Hello (camera appeared or rebooted) and Bye (camera leaving) on the WS-Discovery group.

    `on_event` is called on the loop thread, for each Hello/Bye, with a WsdEvent; it must not block. Cameras
    that never send Hello (a known quirk) are still found by the periodic probe.
    """

    def __init__(self, on_event: Callable[[WsdEvent], None], interfaces: Iterable[Interface] | None = None) -> None:
        self._on_event = on_event
        self._interfaces = None if interfaces is None else tuple(interfaces)
        self._transport: asyncio.DatagramTransport | None = None
        self.state = ListenerState.STOPPED
        self.stats = ProbeStats()
        self.joined: tuple[Interface, ...] = ()

    async def start(self) -> None:
        if self.state is not ListenerState.STOPPED:
            raise RuntimeError(f"listener is {self.state.value}")
        ifaces = list_interfaces() if self._interfaces is None else self._interfaces
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Other WS-Discovery software on the host may hold 3702 too; share it instead of failing.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
            sock.bind(("", WSD_PORT))
            joined = []
            for iface in ifaces:
                mreq = struct.pack("4s4s", socket.inet_aton(WSD_GROUP), socket.inet_aton(iface.ip))
                try:
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
                    joined.append(iface)
                except OSError as exc:
                    log.warning("cannot join the WS-Discovery group on %s (%s): %s", iface.name, iface.ip, exc)
            if not joined:
                raise OSError("could not join the WS-Discovery multicast group on any interface")
        except OSError:
            sock.close()
            raise
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: _ListenProtocol(self), sock=sock)
        self.joined = tuple(joined)
        self.state = ListenerState.LISTENING

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self.state = ListenerState.CLOSED

    def _feed(self, data: bytes, source_ip: str) -> None:
        self.stats.received += 1
        try:
            msg: WsdMessage = parse_datagram(data)
        except ParseError as exc:
            self.stats.rejected += 1
            self.stats.last_reject_reason = exc.reason
            return
        if msg.kind not in (MessageKind.HELLO, MessageKind.BYE):
            return
        for ep in msg.endpoints:
            if msg.kind is MessageKind.HELLO:
                event = WsdEvent(
                    WsdEventKind.HELLO, source_ip, ep.uuid, ep.address,
                    endpoint_to_discovered(ep, source_ip, Via.HELLO, None),
                )
            else:
                event = WsdEvent(WsdEventKind.BYE, source_ip, ep.uuid, ep.address, None)
            log.info("WS-Discovery %s from %s (%s)", event.kind.value, source_ip, ep.address)
            try:
                self._on_event(event)
            except (ValueError, TypeError, KeyError, RuntimeError) as exc:
                # The consumer's bug must not kill the listener; it is logged loudly, not swallowed.
                log.error("Hello/Bye handler failed for %s: %s", source_ip, exc)
