"""The doctor's checks of this box: disk, temperature, power/throttling, clock sync, and the broker's verdict.

Same conventions as checks.py: each returns a `CheckResult` whose texts are English gettext templates.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from agent.health.checks import CheckResult, failed, passed, skipped
from agent.health.metrics import read_psutil_temperature, read_thermal_zone, read_throttled
from agent.i18n import N_

DISK_MIN_FREE_BYTES = 1 << 30  # 1 GiB: an hour-long outage of events with snapshots fits comfortably
DISK_MIN_FREE_PCT = 5.0
TEMP_MAX_C = 80.0  # a Pi 4 starts soft throttling at 80 °C
CLOCK_TOOL_TIMEOUT_S = 3.0


_T_DISK = N_("disk space")
_T_TEMP = N_("temperature")
_T_THROTTLE = N_("power supply and throttling")
_T_NTP = N_("clock in sync")
BROKER_TITLE = _T_BROKER = N_("MQTT broker")


def check_disk(state_dir: Path) -> CheckResult:
    probe = state_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        usage = shutil.disk_usage(probe)
    except OSError as exc:
        return failed("disk", _T_DISK, N_("cannot read free space of %(path)s: %(error)s"),
                      N_("Check that the storage is mounted."), path=str(state_dir), error=exc.strerror or str(exc))
    pct = 100.0 * usage.free / usage.total if usage.total else 0.0
    params = {"path": str(probe), "free": usage.free / 1e9, "pct": pct}
    if usage.free < DISK_MIN_FREE_BYTES or pct < DISK_MIN_FREE_PCT:
        return failed("disk", _T_DISK, N_("only %(free).1f GB (%(pct).0f%%) free on %(path)s"),
                      N_("Free space: old logs (journalctl --vacuum-size=100M), old snapshots, or use a larger SD "
                         "card. Events are kept on disk while the link is down, and need room."), **params)
    return passed("disk", _T_DISK, N_("%(free).1f GB (%(pct).0f%%) free on %(path)s"), **params)


def check_temperature(thermal_dir: Path = Path("/sys/class/thermal"), *, use_psutil: bool = True) -> CheckResult:
    temp = read_thermal_zone(thermal_dir)
    if temp is None and use_psutil:
        temp = read_psutil_temperature()
    if temp is None:
        return skipped("temperature", _T_TEMP, N_("this machine has no temperature sensor we can read"))
    if temp >= TEMP_MAX_C:
        return failed("temperature", _T_TEMP, N_("the processor is at %(temp).0f °C"),
                      N_("Too hot: the box will slow down and drop frames. Give it shade and air, a heatsink or a "
                         "fan; do not seal it in a box in the sun."), temp=temp)
    return passed("temperature", _T_TEMP, N_("%(temp).0f °C"), temp=temp)


def check_throttling(vcgencmd: str | None = None) -> CheckResult:
    flags = read_throttled(vcgencmd)
    if flags is None:
        return skipped("throttling", _T_THROTTLE, N_("not a Raspberry Pi (vcgencmd not available)"))
    if flags["under_voltage"] or flags["under_voltage_occurred"]:
        return failed("throttling", _T_THROTTLE, N_("under-voltage detected (%(raw)s)"),
                      N_("The power supply is too weak or the cable too thin/long. Use the official 5.1 V 3 A "
                         "supply and a short cable; a weak supply corrupts SD cards."), raw=flags["raw"])
    if flags["throttled"] or flags["soft_temp_limit"] or flags["arm_freq_capped"]:
        return failed("throttling", _T_THROTTLE, N_("the processor is being slowed down (%(raw)s)"),
                      N_("The board is too hot; improve cooling (heatsink, fan, shade)."), raw=flags["raw"])
    return passed("throttling", _T_THROTTLE, N_("no under-voltage or throttling (%(raw)s)"), raw=flags["raw"])


def check_clock_sync(run: Callable[[list[str]], str | None] | None = None) -> CheckResult:
    """timedatectl, then chrony; skipped with a note when neither is there."""
    run = run or _run_tool
    out = run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    if out is not None and out.strip() in ("yes", "no"):
        if out.strip() == "yes":
            return passed("clock_sync", _T_NTP, N_("synchronised (timedatectl)"))
        return failed("clock_sync", _T_NTP, N_("not synchronised (timedatectl)"), _H_NTP)
    out = run(["chronyc", "-n", "tracking"])
    if out is not None and "Leap status" in out:
        if "Not synchronised" in out:
            return failed("clock_sync", _T_NTP, N_("not synchronised (chrony)"), _H_NTP)
        return passed("clock_sync", _T_NTP, N_("synchronised (chrony)"))
    return skipped("clock_sync", _T_NTP, N_("neither timedatectl nor chrony is available to ask"))


_H_NTP = N_(
    "The clock is not synchronised, so event times may be wrong and TLS to the broker can fail. Check internet "
    "access to an NTP server (sudo timedatectl set-ntp true), or set the time by hand."
)


def _run_tool(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=CLOCK_TOOL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def broker_result(kind: str | None, *, host: str, port: int, tls: bool, detail: str = "") -> CheckResult:
    """Turn the outcome of an MQTT connection attempt into a check (the attempt itself is made by the CLI)."""
    params = {"host": host, "port": port, "tls": "TLS" if tls else "plain", "error": detail}
    if kind is None:
        return passed("broker", _T_BROKER, N_("connected to %(host)s:%(port)s (%(tls)s) and logged in"), **params)
    hints = {
        "auth": N_("The broker refused the user name or password (or this user's ACL). Check mqtt.username and the "
                   "password in the config against the station's broker accounts."),
        "tls": N_("The TLS handshake failed: check mqtt.tls.ca_file is the CA that signed the broker's "
                  "certificate, that mqtt.host matches the certificate's name, and that this box's clock is right."),
        "refused": N_("Nothing listens on that port: check mqtt.host and mqtt.port (1883 plain, 8883 TLS) and that "
                      "the broker is running."),
        "timeout": N_("No answer from the broker: check this box's internet link, the station's firewall, and "
                      "mqtt.host."),
    }
    hint = hints.get(kind, hints["timeout"])
    return failed("broker", _T_BROKER, N_("%(host)s:%(port)s (%(tls)s): %(error)s"), hint, **params)
