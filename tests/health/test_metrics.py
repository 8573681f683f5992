"""Health metrics: sensors read from a fake /sys and /proc tree, absent sensors as None, per-camera hour windows."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agent.health.board import StatusBoard
from agent.health.metrics import (
    HealthCollector,
    HostPaths,
    decode_throttled,
    parse_throttled,
    read_thermal_zone,
    read_throttled,
    read_wireless,
    sample_to_dict,
)
from agent.models import CameraReport, DecodeMode

WIRELESS = """Inter-| sta-|   Quality        |   Discarded packets               | Missed | WEP
 face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22
 wlan0: 0000   54.  -56.  -256        0      0      0      0     12        0
"""


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def zone(root: Path, n: int, kind: str, milli: str) -> None:
    z = root / f"thermal_zone{n}"
    z.mkdir(parents=True)
    (z / "type").write_text(kind + "\n")
    (z / "temp").write_text(milli + "\n")


def fake_paths(tmp_path: Path, *, thermal: bool = True, wifi: bool = True, vcgencmd: str = "") -> HostPaths:
    thermal_dir = tmp_path / "sys_class_thermal"
    thermal_dir.mkdir()
    if thermal:
        zone(thermal_dir, 0, "acpitz", "30000")
        zone(thermal_dir, 1, "cpu-thermal", "61234")
    wireless = tmp_path / "proc_net_wireless"
    if wifi:
        wireless.write_text(WIRELESS)
    boot = tmp_path / "boot_id"
    boot.write_text("6f1c1f1e-0000-4000-8000-000000000001\n")
    return HostPaths(thermal_dir=thermal_dir, wireless=wireless, boot_id=boot, vcgencmd=vcgencmd,
                     use_psutil_sensors=False)


def fake_vcgencmd(tmp_path: Path, output: str, rc: int = 0) -> str:
    exe = tmp_path / "vcgencmd"
    exe.write_text(f"#!/bin/sh\necho '{output}'\nexit {rc}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(exe)


def test_metrics_thermal_prefers_soc_zone(tmp_path: Path) -> None:
    """The cpu-thermal zone wins over the first zone, in °C from millidegrees."""
    p = fake_paths(tmp_path)
    assert read_thermal_zone(p.thermal_dir) == pytest.approx(61.234)


def test_metrics_thermal_skips_broken_sensor(tmp_path: Path) -> None:
    """A disconnected sensor (-273 °C) or unreadable zone is skipped; the next one is used."""
    root = tmp_path / "t"
    zone(root, 0, "cpu-thermal", "-273000")
    zone(root, 1, "board", "garbage")
    zone(root, 2, "gpu", "45000")
    assert read_thermal_zone(root) == 45.0


def test_metrics_thermal_absent_is_none(tmp_path: Path) -> None:
    """No thermal zones (or no directory at all) is None, not 0."""
    assert read_thermal_zone(tmp_path / "nothing") is None
    (tmp_path / "empty").mkdir()
    assert read_thermal_zone(tmp_path / "empty") is None


def test_metrics_wireless_parsed(tmp_path: Path) -> None:
    """/proc/net/wireless gives interface, link quality and signal in dBm."""
    p = fake_paths(tmp_path)
    assert read_wireless(p.wireless) == {"interface": "wlan0", "link_quality": 54.0, "signal_dbm": -56.0}


def test_metrics_wireless_unsigned_level(tmp_path: Path) -> None:
    """Drivers reporting the level as an unsigned byte (200 = -56 dBm) are converted."""
    f = tmp_path / "w"
    f.write_text(WIRELESS.replace("-56.", "200."))
    assert read_wireless(f)["signal_dbm"] == -56.0  # type: ignore[index]


def test_metrics_wireless_absent_is_none(tmp_path: Path) -> None:
    """Wired hosts (headers only) and hosts without the file report None."""
    f = tmp_path / "w"
    f.write_text("\n".join(WIRELESS.splitlines()[:2]) + "\n")
    assert read_wireless(f) is None
    assert read_wireless(tmp_path / "missing") is None


def test_metrics_throttled_bits_decoded() -> None:
    """0x50005 is under-voltage now and throttled now, and both have occurred since boot."""
    flags = decode_throttled(parse_throttled("throttled=0x50005\n"))  # type: ignore[arg-type]
    assert flags["under_voltage"] and flags["throttled"]
    assert flags["under_voltage_occurred"] and flags["throttled_occurred"]
    assert not flags["arm_freq_capped"] and not flags["soft_temp_limit_occurred"]
    assert parse_throttled("error=1") is None and parse_throttled("throttled=zz") is None


def test_metrics_vcgencmd_real_executable(tmp_path: Path) -> None:
    """A vcgencmd on the path is run and its answer decoded; a failing one or none gives None."""
    good = fake_vcgencmd(tmp_path, "throttled=0x1")
    result = read_throttled(good)
    assert result is not None and result["raw"] == "0x1" and result["under_voltage"] is True
    (tmp_path / "bad").mkdir()
    assert read_throttled(fake_vcgencmd(tmp_path / "bad", "VCHI init failed", rc=255)) is None
    assert read_throttled("") is None
    assert read_throttled(str(tmp_path / "no-such-tool")) is None


def test_metrics_sample_has_host_figures(tmp_path: Path) -> None:
    """A sample carries version, boot id, temperature, wifi, throttling, disk, memory, load and worker CPU."""
    p = fake_paths(tmp_path, vcgencmd=fake_vcgencmd(tmp_path, "throttled=0x0"))
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        c = HealthCollector(version="9.9", state_dir=tmp_path, paths=p)
        first = c.sample(worker_pids=[child.pid], outbox={"depth": 3, "dead_letters": 0})
        second = c.sample(worker_pids=[child.pid, 2**22 + 12345])
    finally:
        child.kill()
        child.wait()
    h = second.host
    assert second.version == "9.9" and second.boot_id.startswith("6f1c1f1e")
    assert h["temperature_c"] == pytest.approx(61.234)
    assert h["wifi"]["signal_dbm"] == -56.0 and h["throttling"]["under_voltage"] is False
    assert h["disk"]["free_bytes"] > 0 and h["memory"]["total_bytes"] > 0
    assert first.host["workers"][str(child.pid)]["cpu_pct"] is None  # no interval yet: absent, not 0
    assert isinstance(h["workers"][str(child.pid)]["cpu_pct"], float)
    assert h["workers"][str(2**22 + 12345)] is None
    assert first.outbox == {"depth": 3, "dead_letters": 0}
    json.dumps(sample_to_dict(second), allow_nan=False)


def test_metrics_absent_sensors_are_none(tmp_path: Path) -> None:
    """On a board with no thermal zone, no wifi and no vcgencmd, those fields are None."""
    p = fake_paths(tmp_path, thermal=False, wifi=False)
    h = HealthCollector(version="1", state_dir=tmp_path, paths=p).sample().host
    assert h["temperature_c"] is None and h["wifi"] is None and h["throttling"] is None


def test_metrics_disk_of_missing_dir_is_none(tmp_path: Path) -> None:
    """A state dir that does not exist yet gives disk None rather than an exception."""
    p = fake_paths(tmp_path)
    h = HealthCollector(version="1", state_dir=tmp_path / "nope", paths=p).sample().host
    assert h["disk"] is None


def report(cam: str, **kw: object) -> CameraReport:
    base = {"camera_id": cam, "ts": 0.0, "connected": True, "fps_in": 12.0, "fps_analysed": 4.0,
            "decode_mode": DecodeMode.ADAPTIVE, "last_frame_age_s": 0.2}
    base.update(kw)
    return CameraReport(**base)  # type: ignore[arg-type]


def test_metrics_camera_counters_last_hour(tmp_path: Path) -> None:
    """Reconnects, stalls and events are counted over the last hour, and survive a pipeline restart."""
    mono = Clock()
    c = HealthCollector(version="1", state_dir=tmp_path, paths=fake_paths(tmp_path), mono=mono)
    c.observe(report("a", reconnects=2, events=5))
    mono.t += 1800
    c.observe(report("a", reconnects=3, events=9, stalls=1))
    mono.t += 1900  # the first report is now more than an hour old
    c.observe(report("a", reconnects=1, events=1, stalls=0))  # counters went down: the pipeline restarted
    board = StatusBoard(mono=mono)
    board.observe(report("a"))
    cams = c.cameras(board.snapshot(), board.reports(), {"a": 4})
    a = cams["a"]
    assert (a["reconnects_1h"], a["events_1h"], a["stalls_1h"]) == (1 + 1, 4 + 1, 1)
    assert a["state"] == "online" and a["fps_in"] == 12.0 and a["decode_mode"] == "adaptive"
    assert a["onvif_errors"] == 4 and a["last_frame_age_s"] == 0.2


def test_metrics_camera_without_report_is_absent(tmp_path: Path) -> None:
    """A camera known only by status has None for fps and frame age, zero counters."""
    c = HealthCollector(version="1", state_dir=tmp_path, paths=fake_paths(tmp_path))
    board = StatusBoard()
    board.add("b")
    b = c.cameras(board.snapshot(), board.reports())["b"]
    assert b["fps_in"] is None and b["last_frame_age_s"] is None and b["events_1h"] == 0
    assert b["state"] == "degraded" and b["reason"] == "starting"


@pytest.mark.skipif(not os.path.isdir("/sys/class/thermal"), reason="host has no /sys/class/thermal")
def test_metrics_real_host_does_not_raise(tmp_path: Path) -> None:
    """On the real host, every reader returns a value or None without raising."""
    sample = HealthCollector(version="1", state_dir=tmp_path).sample()
    t = sample.host["temperature_c"]
    assert t is None or -40 < t <= 150


def test_metrics_health_payload_validates_against_schema(tmp_path: Path) -> None:
    """The health payload from a real sample and a real outbox's stats matches the schema; any documented outbox
    key missing fails it."""
    from agent.health.schema import OUTBOX_KEYS, validate_health
    from agent.mqtt import payloads
    from agent.outbox import Outbox, Priority, Record

    pi = fake_paths(tmp_path, vcgencmd=fake_vcgencmd(tmp_path, "throttled=0x50005"))
    (tmp_path / "bare").mkdir()
    bare = fake_paths(tmp_path / "bare", thermal=False, wifi=False)
    board = StatusBoard()
    board.observe(report("cho", reconnects=1, events=2))
    board.add("cong")
    outbox = Outbox(tmp_path / "outbox.sqlite3", agent_id="a1")
    try:
        outbox.put(Record("p/health", b"{}", Priority.HEALTH))  # one waiting row: oldest_age_s is a number
        stats = outbox.stats().as_dict()
    finally:
        outbox.close()
    assert set(stats) == OUTBOX_KEYS  # the schema documents exactly what the outbox reports
    for paths in (pi, bare):
        c = HealthCollector(version="0.1.0", state_dir=tmp_path, paths=paths)
        for r in board.reports().values():
            c.observe(r)
        sample = c.sample(statuses=board.snapshot(), reports=board.reports(), worker_pids=[os.getpid()],
                          outbox=stats, onvif_errors={"cong": 3})
        doc = json.loads(payloads.health(sample))
        assert doc["schema"] == "matthan/health/1"
        assert validate_health(doc) == []
    for key in sorted(OUTBOX_KEYS):
        broken = json.loads(json.dumps(doc))
        del broken["outbox"][key]
        assert any(p.startswith("outbox") for p in validate_health(broken)), key


def test_metrics_schema_catches_zero_for_absent(tmp_path: Path) -> None:
    """The validator rejects a wrong shape: a missing key, a string temperature, a negative counter."""
    from agent.health.schema import validate_health

    c = HealthCollector(version="1", state_dir=tmp_path, paths=fake_paths(tmp_path))
    doc = json.loads(json.dumps(sample_to_dict(c.sample())))
    doc["host"]["temperature_c"] = "hot"
    del doc["host"]["wifi"]
    doc["cameras"] = {"x": {"state": "weird"}}
    problems = validate_health(doc)
    assert any("temperature_c" in p for p in problems) and any("host: keys" in p for p in problems)
    assert any("cameras.x.state" in p for p in problems)


def test_metrics_observe_and_sample_concurrently(tmp_path: Path) -> None:
    """Reports arriving on one thread while another samples never break the hour windows."""
    import threading

    c = HealthCollector(version="1", state_dir=tmp_path, paths=fake_paths(tmp_path))
    stop = threading.Event()
    errors: list[BaseException] = []

    def feed() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            c.observe(report("a", reconnects=n, events=n, stalls=n))

    t = threading.Thread(target=feed)
    t.start()
    try:
        for _ in range(300):
            try:
                c.cameras({}, {"a": report("a")})
            except RuntimeError as exc:  # "deque mutated during iteration" without the lock
                errors.append(exc)
    finally:
        stop.set()
        t.join()
    assert errors == []
    assert c.cameras({}, {"a": report("a")})["a"]["events_1h"] > 0


def test_metrics_first_cpu_sample_on_a_thread_is_absent_not_zero(tmp_path: Path) -> None:
    """psutil primes cpu_percent per thread: the health thread's first sample says null, the next one a number."""
    import threading

    collector = HealthCollector(version="9.9", state_dir=tmp_path, paths=fake_paths(tmp_path))
    seen: list[object] = []

    def health_thread() -> None:
        seen.append(collector.host()["cpu_pct"])
        sum(range(200_000))  # some CPU between the two samples
        seen.append(collector.host()["cpu_pct"])

    t = threading.Thread(target=health_thread)
    t.start()
    t.join(10)
    assert seen[0] is None
    assert isinstance(seen[1], float)
