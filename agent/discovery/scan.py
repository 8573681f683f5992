"""Opt-in subnet fallback for cameras that ignore WS-Discovery (multicast filtered, or discovery disabled).

TCP connect to the ports cheap cameras listen on, paced and bounded, then an unauthenticated ONVIF
GetSystemDateAndTime (the one call ONVIF Core 5.9.4 lets anyone make) on each open HTTP port to confirm that an
ONVIF device answers. Only a /24 at most (settings.check_scan_subnet): a village LAN, never beyond.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from dataclasses import dataclass

from agent.discovery.results import Discovered, Via
from agent.discovery.settings import (
    SCAN_CONCURRENCY,
    SCAN_CONNECT_TIMEOUT_S,
    SCAN_PORTS,
    SCAN_RATE_PER_S,
    check_scan_subnet,
)

log = logging.getLogger(__name__)

ONVIF_HTTP_PORTS = (80, 8000, 8080, 8899)  # 554 is RTSP; 37777 (Dahua) and 34567 (XMeye) speak binary protocols
CONFIRM_TIMEOUT_S = 3.0  # a camera answers GetSystemDateAndTime in well under a second
MAX_REPLY_BYTES = 64 * 1024  # the real answer is ~1.5 KiB

# Errors expected from one connect attempt: refused, unreachable, reset, or no answer in time.
CONNECT_ERRORS = (OSError, TimeoutError)

_GET_TIME = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
    b'<s:Body><GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>'
)


@dataclass(frozen=True, slots=True)
class ScanHit:
    """A host with at least one camera port open; `xaddr` is set when ONVIF answered."""

    ip: str
    open_ports: tuple[int, ...]
    xaddr: str | None

    def as_discovered(self) -> Discovered:
        return Discovered(
            ip=self.ip,
            xaddr=self.xaddr or f"http://{self.ip}/onvif/device_service",
            via=Via.SCAN,
            open_ports=self.open_ports,
        )


class _Pacer:
    """Spaces connection attempts 1/rate seconds apart, so a scan never floods a cheap router's ARP table."""

    def __init__(self, rate_per_s: float) -> None:
        self._interval = 1.0 / rate_per_s
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        async with self._lock:
            now = loop.time()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            await asyncio.sleep(delay)


async def _port_open(ip: str, port: int, timeout_s: float) -> bool:
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), timeout_s)
    except CONNECT_ERRORS:
        return False
    writer.close()
    with contextlib.suppress(*CONNECT_ERRORS):
        await asyncio.wait_for(writer.wait_closed(), timeout_s)
    return True


async def confirm_onvif(ip: str, port: int, timeout_s: float = CONFIRM_TIMEOUT_S) -> str | None:
    """POST an unauthenticated GetSystemDateAndTime; return the device-service URL if ONVIF answered.

    The reply is only searched for the response element's name, never parsed, so hostile XML costs nothing.
    """
    path = "/onvif/device_service"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {ip}:{port}\r\n"
        'Content-Type: application/soap+xml; charset=utf-8; action="http://www.onvif.org/ver10/device/wsdl/'
        f'GetSystemDateAndTime"\r\nContent-Length: {len(_GET_TIME)}\r\nConnection: close\r\n\r\n'
    ).encode()

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(ip, port)
        try:
            writer.write(head + _GET_TIME)
            await writer.drain()
            return await reader.read(MAX_REPLY_BYTES)
        finally:
            writer.close()

    try:
        reply = await asyncio.wait_for(exchange(), timeout_s)
    except CONNECT_ERRORS:
        return None
    if reply.startswith(b"HTTP/") and b"GetSystemDateAndTimeResponse" in reply:
        return f"http://{ip}:{port}{path}" if port != 80 else f"http://{ip}{path}"
    return None


async def scan_subnet(
    subnet: str,
    *,
    ports: tuple[int, ...] = SCAN_PORTS,
    rate_per_s: float = SCAN_RATE_PER_S,
    concurrency: int = SCAN_CONCURRENCY,
    connect_timeout_s: float = SCAN_CONNECT_TIMEOUT_S,
    skip: frozenset[str] = frozenset(),
) -> list[ScanHit]:
    """Scan one subnet (at most a /24). Hosts in `skip` (already found, or our own address) are not touched.

    Work is bounded: at most 254 hosts x len(ports) connects, paced at `rate_per_s`, each cut at
    `connect_timeout_s`, plus one confirmation per open HTTP port.
    """
    net = check_scan_subnet(subnet)
    hosts = [str(h) for h in (net.hosts() if net.prefixlen < 31 else net)]
    hosts = [h for h in hosts if h not in skip]
    pacer = _Pacer(rate_per_s)
    sem = asyncio.Semaphore(concurrency)

    async def check(ip: str, port: int) -> tuple[str, int, bool]:
        await pacer.wait()
        async with sem:
            return ip, port, await _port_open(ip, port, connect_timeout_s)

    results = await asyncio.gather(*(check(ip, port) for ip in hosts for port in ports))
    open_by_host: dict[str, list[int]] = {}
    for ip, port, is_open in results:
        if is_open:
            open_by_host.setdefault(ip, []).append(port)

    async def confirm(ip: str, open_ports: list[int]) -> ScanHit:
        xaddr = None
        for port in (p for p in ONVIF_HTTP_PORTS if p in open_ports):
            async with sem:
                xaddr = await confirm_onvif(ip, port)
            if xaddr:
                break
        return ScanHit(ip, tuple(open_ports), xaddr)

    hits = await asyncio.gather(*(confirm(ip, ports_) for ip, ports_ in open_by_host.items()))
    hits = sorted(hits, key=lambda h: ipaddress.IPv4Address(h.ip))
    log.info(
        "subnet scan of %s: %d hosts with camera ports, %d answered ONVIF",
        subnet, len(hits), sum(1 for h in hits if h.xaddr),
    )
    return hits
