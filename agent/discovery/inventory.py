"""The camera inventory: every camera ever seen, persistent in the state dir, surviving IP changes.

A camera is the same camera for years even though the household router hands it a new address after every
power cut. So it is keyed by its ONVIF endpoint uuid (stable across reboots and DHCP), with fallbacks for
cameras that never answered WS-Discovery: serial + hardware id, then the MAC from the ARP table, then the IP.
Its `camera_id` (used in MQTT topics) is chosen once and never changes: the configured name, else the ONVIF
name scope, else model + short uuid, made topic-safe and unique.

The file is JSON, written atomically (temp file, fsync, rename, fsync of the directory), so a power cut leaves
either the old or the new inventory, never half of one. No credential is ever stored here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.atomicfile import write_atomic
from agent.logsetup import camera_logger
from agent.models import CameraInfo

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
INVENTORY_FILE = "inventory.json"
IP_HISTORY_MAX = 20  # enough to see a router's DHCP churn over months, small enough to read
CAMERA_ID_MAX = 48  # topic levels stay readable on the station's screen
_ALWAYS_REPLACE = ("auth", "error")  # these describe the latest attempt, even when it learned nothing
_INFO_FIELDS = tuple(f.name for f in dataclasses.fields(CameraInfo) if f.name != "camera_id")


@dataclass(frozen=True, slots=True)
class IpSighting:
    ip: str
    first_seen: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class InventoryEntry:
    camera_id: str
    key: str  # "uuid:<uuid>" | "serial:<serial>/<hardware id>" | "mac:<mac>" | "ip:<ip>"
    info: CameraInfo
    first_seen: float
    last_seen: float
    last_ip: str | None
    ip_history: tuple[IpSighting, ...] = ()


@dataclass(frozen=True, slots=True)
class InventoryUpdate:
    """What one update did: the entry as stored, whether it is new, and the old IP if the camera moved."""

    entry: InventoryEntry
    created: bool
    ip_changed_from: str | None = None


def slugify(text: str) -> str:
    """Topic-safe id: lower-case ASCII letters, digits and '-'; diacritics folded ("Cổng chợ" -> "cong-cho")."""
    text = text.replace("đ", "d").replace("Đ", "D")
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    return slug[:CAMERA_ID_MAX].rstrip("-")


def identity_key(info: CameraInfo) -> str:
    """The strongest identity we have for a camera (see the module docstring for the order)."""
    if info.endpoint_uuid:
        return f"uuid:{info.endpoint_uuid.lower()}"
    if info.serial:
        return f"serial:{info.serial}/{info.hardware_id or ''}"
    if info.mac:
        return f"mac:{info.mac.lower()}"
    return f"ip:{info.ip}"


def arp_mac(ip: str) -> str | None:
    """The MAC address the kernel's ARP table holds for `ip` (complete entries only), else None.

    /proc/thread-self/net follows the calling thread's network namespace; /proc/net follows the process's.
    """
    for path in ("/proc/thread-self/net/arp", "/proc/net/arp"):
        try:
            with open(path, encoding="ascii", errors="replace") as fh:
                lines = fh.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) >= 4 and parts[0] == ip and int(parts[2], 16) & 0x2 and parts[3] != "00:00:00:00:00:00":
                return parts[3].lower()
        return None
    return None


def _conflicts(a: CameraInfo, b: CameraInfo) -> bool:
    """True when two descriptions carry different strong identities, so they cannot be the same camera."""
    pairs = ((a.endpoint_uuid, b.endpoint_uuid), (a.serial, b.serial), (a.mac, b.mac))
    return any(x and y and x.lower() != y.lower() for x, y in pairs)


def _merge(old: CameraInfo, new: CameraInfo) -> CameraInfo:
    """Newly learned values win; a failed interrogation's empty fields keep what we knew."""
    changes = {}
    for name in _INFO_FIELDS:
        value = getattr(new, name)
        if name in _ALWAYS_REPLACE or value is not None:
            changes[name] = value
    return dataclasses.replace(old, **changes)


class Inventory:
    """Thread-safe; owned by the ONVIF thread, readable from others via `entries()`. `path=None`: memory only."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._entries: dict[str, InventoryEntry] = {}

    # -- persistence -----------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Inventory:
        """Load the inventory; a missing file is an empty inventory, a corrupt one is set aside (not deleted)."""
        inv = cls(path)
        assert inv.path is not None
        try:
            raw = json.loads(inv.path.read_text(encoding="utf-8"))
            for data in raw["cameras"].values():
                entry = _entry_from_json(data)
                inv._entries[entry.camera_id] = entry
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            aside = inv.path.with_name(f"{inv.path.name}.corrupt-{int(time.time())}")
            os.replace(inv.path, aside)
            inv._entries.clear()
            log.error("inventory %s is unreadable (%s); moved it to %s and started empty", inv.path, exc, aside)
        return inv

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            doc = {"version": FORMAT_VERSION, "cameras": {k: _entry_to_json(e) for k, e in self._entries.items()}}
        data = json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=True).encode("utf-8")
        write_atomic(self.path, data)

    # -- queries ---------------------------------------------------------------------------------------------
    def entries(self) -> tuple[InventoryEntry, ...]:
        with self._lock:
            return tuple(self._entries.values())

    def get(self, camera_id: str) -> InventoryEntry | None:
        with self._lock:
            return self._entries.get(camera_id)

    def find(self, info: CameraInfo) -> InventoryEntry | None:
        with self._lock:
            return self._find(info)

    def _find(self, info: CameraInfo) -> InventoryEntry | None:
        entries = list(self._entries.values())
        checks = (
            lambda e: bool(info.endpoint_uuid) and (e.info.endpoint_uuid or "").lower() == info.endpoint_uuid.lower(),
            lambda e: bool(info.serial) and (e.info.serial, e.info.hardware_id) == (info.serial, info.hardware_id),
            lambda e: bool(info.mac) and (e.info.mac or "").lower() == info.mac.lower(),
            lambda e: bool(info.ip) and e.last_ip == info.ip,
        )
        for check in checks:
            for entry in entries:
                if check(entry) and not _conflicts(entry.info, info):
                    return entry
        return None

    # -- updates ---------------------------------------------------------------------------------------------
    def update(
        self, info: CameraInfo, *, configured_name: str | None = None, now: float | None = None
    ) -> InventoryUpdate:
        """Record a sighting (and whatever interrogation learned). Returns the stored entry; does not save."""
        now = time.time() if now is None else now
        with self._lock:
            old = self._find(info)
            if old is None:
                camera_id = self._new_id(info, configured_name)
                entry = InventoryEntry(
                    camera_id=camera_id,
                    key=identity_key(info),
                    info=dataclasses.replace(info, camera_id=camera_id),
                    first_seen=now,
                    last_seen=now,
                    last_ip=info.ip,
                    ip_history=(IpSighting(info.ip, now, now),) if info.ip else (),
                )
                self._entries[camera_id] = entry
                camera_logger(log, camera_id).info("new camera at %s (%s)", info.ip, entry.key)
                return InventoryUpdate(entry, created=True)
            merged = _merge(old.info, dataclasses.replace(info, camera_id=old.camera_id))
            moved_from = old.last_ip if info.ip and old.last_ip and info.ip != old.last_ip else None
            entry = dataclasses.replace(
                old,
                key=identity_key(merged),
                info=merged,
                last_seen=now,
                last_ip=info.ip or old.last_ip,
                ip_history=_sighted(old.ip_history, info.ip, now),
            )
            self._entries[old.camera_id] = entry
        if moved_from:
            camera_logger(log, old.camera_id).warning("IP address changed from %s to %s", moved_from, info.ip)
        return InventoryUpdate(entry, created=False, ip_changed_from=moved_from)

    def _new_id(self, info: CameraInfo, configured_name: str | None) -> str:
        short = (info.endpoint_uuid or "").replace("-", "")[:6] or slugify(info.serial or "")[-6:] or \
            (info.mac or "").replace(":", "")[-6:] or (info.ip or "").rpartition(".")[2]
        base = slugify(configured_name or "") or slugify(info.name or "") or \
            slugify(f"{info.model or info.manufacturer or 'camera'}-{short}") or "camera"
        camera_id, n = base, 2
        while camera_id in self._entries:
            camera_id = f"{base[: CAMERA_ID_MAX - 4]}-{n}"
            n += 1
        return camera_id


def _sighted(history: tuple[IpSighting, ...], ip: str | None, now: float) -> tuple[IpSighting, ...]:
    if not ip:
        return history
    if history and history[-1].ip == ip:
        return (*history[:-1], dataclasses.replace(history[-1], last_seen=now))
    return (*history, IpSighting(ip, now, now))[-IP_HISTORY_MAX:]


def _entry_to_json(entry: InventoryEntry) -> dict[str, Any]:
    info = {name: getattr(entry.info, name) for name in _INFO_FIELDS}
    return {
        "camera_id": entry.camera_id,
        "key": entry.key,
        "info": info,
        "first_seen": entry.first_seen,
        "last_seen": entry.last_seen,
        "last_ip": entry.last_ip,
        "ip_history": [dataclasses.asdict(s) for s in entry.ip_history],
    }


def _entry_from_json(data: dict[str, Any]) -> InventoryEntry:
    info_data = {k: v for k, v in data["info"].items() if k in _INFO_FIELDS}  # tolerate fields from newer versions
    return InventoryEntry(
        camera_id=str(data["camera_id"]),
        key=str(data["key"]),
        info=CameraInfo(camera_id=str(data["camera_id"]), **info_data),
        first_seen=float(data["first_seen"]),
        last_seen=float(data["last_seen"]),
        last_ip=data.get("last_ip"),
        ip_history=tuple(IpSighting(str(s["ip"]), float(s["first_seen"]), float(s["last_seen"]))
                         for s in data.get("ip_history", [])),
    )
