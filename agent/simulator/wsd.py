"""WS-Discovery (2005/04, as ONVIF uses it) for one simulated camera: answer Probes, announce Hello and Bye.

Sockets: a unicast socket bound to (camera IP, 3702) answers and sends; in namespace mode a second socket bound to
(239.255.255.250, 3702) and joined to the group on the camera's address receives multicast probes. All set
SO_REUSEADDR and SO_REUSEPORT so several cameras and a third-party publisher share port 3702 in one namespace.
In loopback mode there is no multicast at all: unicast probes on a free port only, and no Hello or Bye, so
nothing ever reaches the machine's real interfaces.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote
from xml.sax.saxutils import escape

log = logging.getLogger(__name__)

GROUP = "239.255.255.250"
PORT = 3702
NS_D = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
NS_A = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_S = "http://www.w3.org/2003/05/soap-envelope"
NS_DN = "http://www.onvif.org/ver10/network/wsdl"
NS_TDS = "http://www.onvif.org/ver10/device/wsdl"
OUR_TYPES = {(NS_DN, "NetworkVideoTransmitter"), (NS_TDS, "Device")}
MAX_DATAGRAM = 65535


@dataclass
class Advert:
    """What a camera says about itself in discovery; read at send time so changes (new IP) show at once."""

    endpoint: str  # urn:uuid:...
    xaddrs: str
    scopes: str  # space-separated, already percent-encoded (unless a quirk says otherwise)
    metadata_version: int = 1
    no_wrapper: bool = False  # quirk: ProbeMatch without ProbeMatches
    duplicate: bool = False  # quirk: every probe answered twice


def scope_list(name: str, hardware: str, location: str, *, raw_space: bool = False) -> str:
    enc = (lambda s: s) if raw_space else (lambda s: quote(s, safe=""))
    return " ".join([
        "onvif://www.onvif.org/type/video_encoder",
        "onvif://www.onvif.org/Profile/Streaming",
        f"onvif://www.onvif.org/name/{enc(name)}",
        f"onvif://www.onvif.org/hardware/{enc(hardware)}",
        f"onvif://www.onvif.org/location/{enc(location)}",
    ])


def _envelope(action: str, body: str, *, relates_to: str | None = None, seq: tuple[int, int] = (1, 1)) -> bytes:
    rel = f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>" if relates_to else ""
    to = ("http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous" if relates_to
          else "urn:schemas-xmlsoap-org:ws:2005:04:discovery")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{NS_S}" xmlns:a="{NS_A}" xmlns:d="{NS_D}" '
        f'xmlns:dn="{NS_DN}" xmlns:tds="{NS_TDS}"><s:Header>'
        f"<a:MessageID>urn:uuid:{uuid.uuid4()}</a:MessageID>{rel}<a:To>{to}</a:To>"
        f"<a:Action>{NS_D}/{action}</a:Action>"
        f'<d:AppSequence InstanceId="{seq[0]}" MessageNumber="{seq[1]}"/></s:Header><s:Body>{body}</s:Body>'
        "</s:Envelope>"
    ).encode()


def _match_body(ad: Advert) -> str:
    return (f"<a:EndpointReference><a:Address>{ad.endpoint}</a:Address></a:EndpointReference>"
            f"<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types><d:Scopes>{escape(ad.scopes)}</d:Scopes>"
            f"<d:XAddrs>{escape(ad.xaddrs)}</d:XAddrs><d:MetadataVersion>{ad.metadata_version}</d:MetadataVersion>")


def probe_match(ad: Advert, relates_to: str, seq: tuple[int, int]) -> bytes:
    inner = f"<d:ProbeMatch>{_match_body(ad)}</d:ProbeMatch>"
    body = inner if ad.no_wrapper else f"<d:ProbeMatches>{inner}</d:ProbeMatches>"
    return _envelope("ProbeMatches", body, relates_to=relates_to, seq=seq)


def hello(ad: Advert, seq: tuple[int, int]) -> bytes:
    return _envelope("Hello", f"<d:Hello>{_match_body(ad)}</d:Hello>", seq=seq)


def bye(ad: Advert, seq: tuple[int, int]) -> bytes:
    return _envelope("Bye", f"<d:Bye><a:EndpointReference><a:Address>{ad.endpoint}</a:Address>"
                            "</a:EndpointReference></d:Bye>", seq=seq)


def parse_probe(data: bytes, scopes: str) -> str | None:
    """The probe's MessageID when `data` is a Probe our types and scopes match, else None. Never raises."""
    if len(data) > MAX_DATAGRAM or b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return None
    try:
        prefixes: dict[str, str] = {}
        root = None
        for event, item in ET.iterparse(_BytesReader(data), events=("start-ns", "start")):
            if event == "start-ns":
                prefix, uri = item  # type: ignore[misc]
                prefixes.setdefault(prefix, uri)
            elif root is None:
                root = item
        if root is None:
            return None
        probe = root.find(f"{{{NS_S}}}Body/{{{NS_D}}}Probe")
        mid = root.findtext(f"{{{NS_S}}}Header/{{{NS_A}}}MessageID")
        if probe is None or not mid:
            return None
        types_text = probe.findtext(f"{{{NS_D}}}Types") or ""
        for qname in types_text.split():
            prefix, _, local = qname.rpartition(":")
            if (prefixes.get(prefix, ""), local) not in OUR_TYPES:
                return None
        ours = scopes.split()
        for wanted in (probe.findtext(f"{{{NS_D}}}Scopes") or "").split():
            base = wanted.rstrip("/")
            if not any(s == base or s.startswith(base + "/") for s in ours):
                return None
        return mid.strip()
    except ET.ParseError:
        return None


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.pos + n
        chunk = self.data[self.pos:end]
        self.pos += len(chunk)
        return chunk


def _udp_socket(bind: tuple[str, int]) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setblocking(False)
    sock.bind(bind)
    return sock


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.on_datagram(data, addr)


class Responder:
    """One camera's WS-Discovery endpoint on the running asyncio loop."""

    def __init__(self, advert: Callable[[], Advert], ip: str, *, multicast: bool, port: int) -> None:
        self.advert, self.ip, self.multicast, self.port = advert, ip, multicast, port
        self.instance_id = 1
        self.message_number = 0
        self.probes_answered = 0
        self._transports: list[asyncio.DatagramTransport] = []
        self._uni: asyncio.DatagramTransport | None = None

    def _seq(self) -> tuple[int, int]:
        self.message_number += 1
        return (self.instance_id, self.message_number)

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        uni = _udp_socket((self.ip, self.port))
        self.port = uni.getsockname()[1]
        tr, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self._on_datagram), sock=uni)
        self._uni = tr  # type: ignore[assignment]
        self._transports.append(tr)  # type: ignore[arg-type]
        if self.multicast:
            uni.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.ip))
            uni.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            mc = _udp_socket((GROUP, PORT))
            mc.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                          struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(self.ip)))
            tr2, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self._on_datagram), sock=mc)
            self._transports.append(tr2)  # type: ignore[arg-type]
        return self.port

    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        ad = self.advert()
        mid = parse_probe(data, ad.scopes)
        if mid is None or self._uni is None:
            return
        msg = probe_match(ad, mid, self._seq())
        self.probes_answered += 1
        for _ in range(2 if ad.duplicate else 1):
            self._uni.sendto(msg, addr)

    def announce(self, kind: str) -> None:
        """Send Hello or Bye to the group (namespace mode only; loopback mode never multicasts)."""
        if not self.multicast or self._uni is None:
            return
        ad = self.advert()
        msg = hello(ad, self._seq()) if kind == "hello" else bye(ad, self._seq())
        self._uni.sendto(msg, (GROUP, PORT))

    def close(self) -> None:
        for tr in self._transports:
            tr.close()
        self._transports.clear()
        self._uni = None
