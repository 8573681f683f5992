"""One discovery round, end to end: probe, optional subnet scan, interrogate, record in the inventory.

Used by the daemon's ONVIF thread (every `interval_s`, and at once for a Hello) and by `matthan-agent discover`.
Runs on the caller's asyncio loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from agent.discovery.auth_store import budget_for
from agent.discovery.inventory import Inventory, InventoryUpdate
from agent.discovery.policy import AuthBudget
from agent.discovery.results import Discovered, FailureReason, Interrogation, Via
from agent.discovery.scan import ScanHit, scan_subnet
from agent.discovery.settings import DiscoverySettings
from agent.discovery.wsd import Interface, ProbeStats, list_interfaces, probe
from agent.models import CameraInfo

log = logging.getLogger(__name__)

# An open port only a camera or DVR would have (RTSP, XMeye, Dahua); a lone web port is any router or PC.
CAMERA_ONLY_PORTS = frozenset({554, 8899, 37777, 34567})


@dataclass(frozen=True, slots=True)
class IpChange:
    camera_id: str
    old_ip: str
    new_ip: str


InterrogatorFactory = Callable[[DiscoverySettings, AuthBudget | None], Callable[[Discovered], Awaitable[Interrogation]]]


@dataclass(frozen=True, slots=True)
class DiscoveryReport:
    """What one round found. `rows` carry inventory ids in `info.camera_id`, failed cameras included."""

    rows: tuple[Interrogation, ...]
    probe_stats: ProbeStats
    interfaces: tuple[Interface, ...]
    scan_hits: tuple[ScanHit, ...] = ()
    ip_changes: tuple[IpChange, ...] = ()
    duration_s: float = 0.0


def merge_found(found: Iterable[Discovered]) -> list[Discovered]:
    """One entry per camera: by endpoint uuid when known, else by IP; earlier entries (multicast) win."""
    out: dict[str, Discovered] = {}
    ips: set[str] = set()
    for dev in found:
        key = dev.endpoint_uuid or f"ip:{dev.ip}"
        if key in out or (not dev.endpoint_uuid and dev.ip in ips):
            continue
        out[key] = dev
        ips.add(dev.ip)
    return list(out.values())


def target_device(ip: str, port: int = 80) -> Discovered:
    """A camera named by the user that did not answer WS-Discovery: try ONVIF at its default address."""
    host = ip if port == 80 else f"{ip}:{port}"
    return Discovered(ip=ip, xaddr=f"http://{host}/onvif/device_service", via=Via.TARGET)


async def discover_once(
    settings: DiscoverySettings,
    *,
    inventory: Inventory | None = None,
    budget: AuthBudget | None = None,
    interfaces: Iterable[Interface] | None = None,
    interrogate: bool = True,
    interrogator: InterrogatorFactory | None = None,
) -> DiscoveryReport:
    """Run one round. Raises ValueError for a configured interface that does not exist; device trouble is in
    the rows. Saves the inventory when it has a path; without a `budget`, the credential budget is kept beside
    such an inventory (the state dir), else in memory for this round only. `interrogator` makes the per-camera
    interrogation (the daemon's runs in a helper process, agent.discovery.remote); by default it runs here."""
    started = time.monotonic()
    inventory = inventory if inventory is not None else Inventory()
    if budget is None and interrogate:
        budget = budget_for(settings, inventory.path.parent if inventory.path is not None else None)
    if interfaces is None:  # unicast-only rounds (loopback demo) need no interface list
        interfaces = list_interfaces(settings.interfaces) if settings.multicast or settings.interfaces else ()
    ifaces = tuple(interfaces)
    known_ips = [e.last_ip for e in inventory.entries() if e.last_ip]
    unicast = list(dict.fromkeys([*settings.unicast_targets, *known_ips]))
    # Pipelined: each camera is interrogated as soon as its ProbeMatch arrives, while the window is still open,
    # and the WSDLs are parsed meanwhile; the round then takes about the probe window, not window + interrogation.
    tasks: list[asyncio.Task[Interrogation]] = []
    warm = None
    if interrogator is None:
        from agent.discovery.onvif import make_interrogator, warm_up  # the SOAP stack, only when used here

        interrogator = make_interrogator
        warm = asyncio.create_task(warm_up()) if interrogate else None
    one = interrogator(settings, budget)

    def start(dev: Discovered) -> None:
        if interrogate:
            tasks.append(asyncio.create_task(one(dev)))

    try:
        result = await probe(ifaces, window_s=settings.probe_window_s, unicast_targets=unicast,
                             repeat=settings.probe_repeat, multicast=settings.multicast, on_found=start)
    except BaseException:
        for task in [*tasks, *([warm] if warm else [])]:
            task.cancel()
        raise
    found = list(result.devices)
    answered = {d.ip for d in found}

    hits: list[ScanHit] = []
    own = frozenset(i.ip for i in ifaces)
    for subnet in settings.scan_subnets:
        hits += await scan_subnet(subnet, rate_per_s=settings.scan_rate_per_s, concurrency=settings.scan_concurrency,
                                  connect_timeout_s=settings.scan_connect_timeout_s, skip=own | answered)
    extra = [h.as_discovered() for h in hits if h.xaddr]
    # A bare-IP target that did not answer WS-Discovery may still speak ONVIF at the default address.
    extra += [target_device(t, settings.onvif_port) for t in settings.unicast_targets
              if ":" not in t and t not in answered]
    extra = [d for d in merge_found(extra) if d.ip not in answered]
    devices = found + extra

    if interrogate:
        tasks += [asyncio.create_task(one(d)) for d in extra]
        if warm is not None:
            await warm
        rows = list(await asyncio.gather(*tasks))
    else:
        rows = [Interrogation(_bare_info(d), ok=True, discovered=d) for d in devices]
    rows += [
        Interrogation(CameraInfo(camera_id="", ip=h.ip, error=FailureReason.NO_ONVIF_ANSWER.value), ok=False,
                      reason=FailureReason.NO_ONVIF_ANSWER,
                      detail=f"camera ports {', '.join(map(str, h.open_ports))} open but no ONVIF answer",
                      discovered=Discovered(ip=h.ip, xaddr="", via=Via.SCAN, open_ports=h.open_ports))
        for h in hits if not h.xaddr and h.ip not in {d.ip for d in devices} and set(h.open_ports) & CAMERA_ONLY_PORTS
    ]

    named: list[Interrogation] = []
    changes: list[IpChange] = []
    for row in rows:
        if row.discovered is not None and row.discovered.via is Via.SCAN and not row.discovered.xaddr:
            # Camera ports open but no ONVIF: shown to the technician, never recorded as a camera.
            named.append(dataclasses.replace(row, info=dataclasses.replace(
                row.info, camera_id=f"unconfirmed-{(row.info.ip or '').replace('.', '-')}")))
            continue
        override = settings.override_for(row.info.ip, row.info.endpoint_uuid, row.info.name)
        update: InventoryUpdate = inventory.update(row.info, configured_name=override.name if override else None)
        if update.ip_changed_from:
            changes.append(IpChange(update.entry.camera_id, update.ip_changed_from, row.info.ip or ""))
        named.append(dataclasses.replace(row, info=dataclasses.replace(row.info, camera_id=update.entry.camera_id)))
    inventory.save()
    named.sort(key=lambda r: (ipaddress.IPv4Address(r.info.ip or "0.0.0.0"), r.info.camera_id))
    return DiscoveryReport(tuple(named), result.stats, ifaces, tuple(hits), tuple(changes),
                           round(time.monotonic() - started, 3))


def _bare_info(dev: Discovered) -> CameraInfo:
    return CameraInfo(camera_id="", endpoint_uuid=dev.endpoint_uuid, ip=dev.ip, name=dev.name,
                      location=dev.location, hardware_id=dev.hardware, xaddr=dev.xaddr)
