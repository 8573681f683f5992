"""The periodic health sample: host metrics, outbox figures and per-camera statistics in one `HealthSample`.

Every sensor reader takes its path (or command) as an argument, so tests feed a fake `/sys/class/thermal` and
`/proc/net/wireless` written into a temporary directory. A sensor this board does not have is None — never 0 —
so the station can tell "no sensor" from "0 °C".
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from agent.models import CameraReport, CameraStatus, HealthSample

log = logging.getLogger(__name__)

HOUR_S = 3600.0  # per-camera counters are reported "in the last hour"
VCGENCMD_TIMEOUT_S = 2.0  # vcgencmd answers in milliseconds; a hung VideoCore must not hold the health thread
VCGENCMD_PATHS = ("/usr/bin/vcgencmd", "/opt/vc/bin/vcgencmd")

# `vcgencmd get_throttled` bits (Raspberry Pi documentation, "get_throttled").
THROTTLE_BITS: dict[int, str] = {
    0: "under_voltage",
    1: "arm_freq_capped",
    2: "throttled",
    3: "soft_temp_limit",
    16: "under_voltage_occurred",
    17: "arm_freq_capped_occurred",
    18: "throttled_occurred",
    19: "soft_temp_limit_occurred",
}
# Thermal zone types that are the SoC/CPU, best first (Pi: cpu-thermal; x86: x86_pkg_temp; many ARM: soc-thermal).
SOC_ZONE_TYPES = ("cpu-thermal", "cpu_thermal", "soc-thermal", "soc_thermal", "x86_pkg_temp", "cpu", "soc")
PSUTIL_SENSOR_NAMES = ("cpu_thermal", "cpu-thermal", "coretemp", "k10temp", "soc_thermal", "acpitz")


@dataclass(frozen=True, slots=True)
class HostPaths:
    """Where the host's sensors live. Tests point these into a temporary tree."""

    thermal_dir: Path = Path("/sys/class/thermal")
    wireless: Path = Path("/proc/net/wireless")
    boot_id: Path = Path("/proc/sys/kernel/random/boot_id")
    vcgencmd: str | None = None  # None: look in the usual places; "" disables
    use_psutil_sensors: bool = True


# -- host sensors (each a pure-ish reader of one source) -------------------------------------------------------
def decode_throttled(value: int) -> dict[str, bool]:
    """`get_throttled` bit field → named flags (all of them, True or False)."""
    return {name: bool(value >> bit & 1) for bit, name in THROTTLE_BITS.items()}


def parse_throttled(text: str) -> int | None:
    """'throttled=0x50005' → 0x50005; None when the output is not that."""
    text = text.strip()
    if not text.startswith("throttled="):
        return None
    try:
        return int(text.split("=", 1)[1], 0)
    except ValueError:
        return None


def read_throttled(vcgencmd: str | None) -> dict[str, Any] | None:
    """Run `vcgencmd get_throttled`; None when the tool is absent or fails (not a Pi, or no /dev/vchiq access)."""
    exe = vcgencmd if vcgencmd is not None else next((p for p in VCGENCMD_PATHS if os.access(p, os.X_OK)), None)
    if not exe:
        return None
    try:
        out = subprocess.run(
            [exe, "get_throttled"], capture_output=True, text=True, timeout=VCGENCMD_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("vcgencmd unavailable: %s", exc)
        return None
    value = parse_throttled(out.stdout) if out.returncode == 0 else None
    if value is None:
        return None
    return {"raw": hex(value), **decode_throttled(value)}


def read_thermal_zone(thermal_dir: Path) -> float | None:
    """SoC temperature in °C from `/sys/class/thermal/thermal_zone*/{type,temp}` (millidegrees), best zone."""
    try:
        zones = sorted(p for p in thermal_dir.iterdir() if p.name.startswith("thermal_zone"))
    except OSError:
        return None
    found: dict[str, float] = {}
    first: float | None = None
    for zone in zones:
        try:
            kind = (zone / "type").read_text().strip().lower()
            milli = int((zone / "temp").read_text().strip())
        except (OSError, ValueError):
            continue
        celsius = milli / 1000.0
        if celsius <= -40.0 or celsius > 150.0:  # a disconnected sensor reads -273 or garbage
            continue
        found.setdefault(kind, celsius)
        if first is None:
            first = celsius
    for kind in SOC_ZONE_TYPES:
        if kind in found:
            return found[kind]
    return first


def read_psutil_temperature() -> float | None:
    reader = getattr(psutil, "sensors_temperatures", None)
    if reader is None:
        return None
    try:
        sensors = reader()
    except (OSError, RuntimeError):
        return None
    for name in PSUTIL_SENSOR_NAMES:
        for entry in sensors.get(name, []):
            if entry.current is not None and -40.0 < entry.current <= 150.0:
                return float(entry.current)
    return None


def read_wireless(path: Path) -> dict[str, Any] | None:
    """The first interface in `/proc/net/wireless`: link quality (of 70 on most drivers) and signal in dBm."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines[2:]:  # two header lines
        if ":" not in line:
            continue
        iface, rest = line.split(":", 1)
        fields = rest.split()
        if len(fields) < 3:
            continue
        try:
            link = float(fields[1].rstrip("."))
            level = float(fields[2].rstrip("."))
        except ValueError:
            continue
        if level > 0:  # some drivers report an unsigned byte: 256 - |dBm|
            level -= 256.0
        return {"interface": iface.strip(), "link_quality": link, "signal_dbm": level}
    return None


def read_boot_id(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def disk_free(path: Path) -> dict[str, Any] | None:
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return {
        "path": str(path),
        "free_bytes": usage.free,
        "total_bytes": usage.total,
        "free_pct": round(100.0 * usage.free / usage.total, 1) if usage.total else None,
    }


# -- per-camera rolling counters ---------------------------------------------------------------------------------
@dataclass(slots=True)
class _CameraWindow:
    """Cumulative counters from reports turned into "in the last hour" figures, robust to a pipeline restart."""

    last: dict[str, int] = field(default_factory=dict)
    increments: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)

    def add(self, now: float, counters: Mapping[str, int]) -> None:
        for name, value in counters.items():
            prev = self.last.get(name)
            # A counter that went down means the pipeline restarted and counts from 0 again. The first report's
            # counts are recent too: the pipeline started moments ago.
            delta = value if prev is None or value < prev else value - prev
            self.last[name] = value
            if delta > 0:
                self.increments.setdefault(name, deque()).append((now, delta))

    def in_window(self, name: str, now: float, window_s: float = HOUR_S) -> int:
        q = self.increments.get(name)
        if q is None:
            return 0
        while q and now - q[0][0] > window_s:
            q.popleft()
        return sum(d for _, d in q)


class HealthCollector:
    """Builds `HealthSample`s. The daemon calls `observe(report)` for every camera report and `sample(...)` on its
    health interval (default 60 s); `sample` never raises for a missing sensor."""

    def __init__(
        self,
        *,
        version: str,
        state_dir: Path,
        paths: HostPaths | None = None,
        mono: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._version = version
        self._state_dir = Path(state_dir)
        self._paths = paths or HostPaths()
        self._mono = mono
        self._wall = wall
        self._started = mono()
        self._boot_id = read_boot_id(self._paths.boot_id)
        self._windows: dict[str, _CameraWindow] = {}
        self._lock = threading.Lock()  # observe() runs on the supervisor's thread, sample() on the health thread
        self._procs: dict[int, psutil.Process] = {}
        self._cpu_threads: set[int] = set()  # threads whose psutil.cpu_percent baseline is primed
        self._self = psutil.Process()
        psutil.cpu_percent(None)  # prime: the first call only starts the measuring interval
        self._self.cpu_percent(None)

    @property
    def boot_id(self) -> str:
        return self._boot_id

    def observe(self, report: CameraReport) -> None:
        counters = {"reconnects": report.reconnects, "stalls": report.stalls, "events": report.events}
        with self._lock:
            self._windows.setdefault(report.camera_id, _CameraWindow()).add(self._mono(), counters)

    def forget(self, camera_id: str) -> None:
        with self._lock:
            self._windows.pop(camera_id, None)

    def host(self, worker_pids: Iterable[int] = ()) -> dict[str, Any]:
        """Host metrics only (also used by `doctor`)."""
        p = self._paths
        temperature = read_thermal_zone(p.thermal_dir)
        if temperature is None and p.use_psutil_sensors:
            temperature = read_psutil_temperature()
        try:
            load = list(os.getloadavg())
        except OSError:
            load = None
        mem = psutil.virtual_memory()
        # psutil keeps the cpu_percent(None) baseline per thread: a thread's first call only primes it and says
        # 0.0, which would read as "idle". Report that first value as absent instead.
        thread = threading.get_ident()
        cpu_pct: float | None = psutil.cpu_percent(None)
        if thread not in self._cpu_threads:
            self._cpu_threads.add(thread)
            cpu_pct = None
        return {
            "cpu_pct": cpu_pct,
            "cpu_count": psutil.cpu_count(),
            "agent_cpu_pct": self._self.cpu_percent(None),
            "workers": self._worker_cpu(worker_pids),
            "load": load,
            "memory": {"total_bytes": mem.total, "available_bytes": mem.available, "used_pct": mem.percent},
            "disk": disk_free(self._state_dir),
            "temperature_c": temperature,
            "throttling": read_throttled(p.vcgencmd),
            "wifi": read_wireless(p.wireless),
        }

    def _worker_cpu(self, pids: Iterable[int]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        wanted = set(pids)
        for pid in list(self._procs):
            if pid not in wanted:
                del self._procs[pid]
        for pid in sorted(wanted):
            proc = self._procs.get(pid)
            try:
                if proc is None:
                    proc = self._procs[pid] = psutil.Process(pid)
                    proc.cpu_percent(None)
                    out[str(pid)] = {"cpu_pct": None, "rss_bytes": proc.memory_info().rss}  # first sample: no interval
                else:
                    out[str(pid)] = {"cpu_pct": proc.cpu_percent(None), "rss_bytes": proc.memory_info().rss}
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                self._procs.pop(pid, None)
                out[str(pid)] = None  # gone between the supervisor's list and now
        return out

    def cameras(
        self,
        statuses: Mapping[str, CameraStatus],
        reports: Mapping[str, CameraReport],
        onvif_errors: Mapping[str, int] | None = None,
    ) -> dict[str, dict[str, Any]]:
        now = self._mono()
        onvif_errors = onvif_errors or {}
        out: dict[str, dict[str, Any]] = {}
        for cam in sorted(set(statuses) | set(reports)):
            status, report = statuses.get(cam), reports.get(cam)
            with self._lock:
                w = self._windows.get(cam, _CameraWindow())
                counts = {k: w.in_window(k, now) for k in ("reconnects", "stalls", "events")}
            out[cam] = {
                "state": str(status.state) if status else None,
                "reason": str(status.reason) if status else None,
                "since": status.since if status else None,
                "fps_in": report.fps_in if report else None,
                "fps_analysed": report.fps_analysed if report else None,
                "decode_mode": str(report.decode_mode) if report and report.decode_mode else None,
                "last_frame_age_s": report.last_frame_age_s if report else None,
                "reconnects_1h": counts["reconnects"],
                "stalls_1h": counts["stalls"],
                "events_1h": counts["events"],
                "onvif_errors": onvif_errors.get(cam, 0),
            }
        return out

    def sample(
        self,
        *,
        statuses: Mapping[str, CameraStatus] | None = None,
        reports: Mapping[str, CameraReport] | None = None,
        outbox: Mapping[str, Any] | None = None,
        worker_pids: Iterable[int] = (),
        onvif_errors: Mapping[str, int] | None = None,
    ) -> HealthSample:
        """One health sample. `outbox` is passed through as given (depth, oldest_age_s, dead_letters, evictions)."""
        return HealthSample(
            ts=self._wall(),
            version=self._version,
            boot_id=self._boot_id,
            uptime_s=round(self._mono() - self._started, 1),
            host=self.host(worker_pids),
            outbox=dict(outbox or {}),
            cameras=self.cameras(statuses or {}, reports or {}, onvif_errors),
        )


def sample_to_dict(sample: HealthSample) -> dict[str, Any]:
    """A plain JSON-able dict (for the state file; the MQTT encoding belongs to agent/mqtt/payloads.py)."""
    return {
        "ts": sample.ts,
        "version": sample.version,
        "boot_id": sample.boot_id,
        "uptime_s": sample.uptime_s,
        "host": sample.host,
        "outbox": sample.outbox,
        "cameras": sample.cameras,
    }
