#!/usr/bin/env python3
"""Agent benchmark: the whole daemon (`matthan-agent run`) on N simulated cameras, once per decode mode.

Prints one JSON line per mode (`keyframe`, `adaptive`, `full`), all at the same analysis fps (default 5):
  {"bench": "agent", "mode": ..., "online_s": ..., "round": {"pss_mb_peak": ..., ...}, "agent": {"cpu_percent": ...,
   "pss_mb": ..., "rss_mb": ...},
   "latency": {"p50_s": ..., "p95_s": ..., "count": ...}, "simulator": {...}, "cpu_count": ..., "window_s": ...}
  goals: agent.pss_mb <= 250; latency.p95_s <= 1 s in `full` mode at 5 fps.

The site is the end-to-end tests' (tests/e2e/rig.py): the cameras live in a private camera namespace, and the
broker (a Mosquitto of our own on 127.0.0.1 *inside* the agent namespace), the station subscriber
(tests/e2e/station.py) and the agent live in the agent namespace. Nothing touches the machine's real interfaces
or its own Mosquitto. Every camera shows the same street scene (a person crossing every 20 s loop) shifted by its
own phase, so crossings are spread over time. The cameras stay up across modes; each mode gets a fresh broker,
station, state directory and agent.

Measured per mode:
- `online_s`: from starting the agent process to the station holding a retained `cameras/<id>/status` with state
  `online` for every camera (station receive times);
- `round`: PSS of the tree during the start-up discovery round, sampled until every camera is online and the
  ONVIF interrogation helper process (which a round starts and which exits 30 s after its last request) is gone:
  the transient peak a round costs, every `discovery.interval_s` (300 s by default);
- `agent`: CPU of the agent's whole process tree (supervisor + camera workers; psutil user+system time deltas,
  as % of one core) over a fixed window that starts `--settle` s after all cameras are online and the helper has
  exited, i.e. in the steady state between rounds; PSS and RSS of the tree (psutil memory_full_info, summed),
  sampled three times during the window (`pss_mb` the last, `pss_mb_max` the largest, which the goal is judged on);
- `latency`: for every motion event `start` the station received whose capture time falls in the window, station
  receive time minus the payload's `ts` (capture time of the frame whose analysis emitted the start; both clocks
  are this machine's). Also reported: minus `start_ts` (adds the tracker's confirmation time) and minus the
  ground-truth moment the crossing started on the wire (adds detection delay, e.g. waiting for a keyframe);
- `simulator`: the RTSP host process and the simulator's ONVIF/WS-Discovery loop thread (in this process), over
  the same window, so readers can subtract them; `machine_cpu_percent` is every core's busy time over the window
  (% of one core), which shows whether something else was running.
Percentiles are nearest-rank. Needs root (network namespaces). Run from the project root, about 4-5 minutes:
    .venv/bin/python scripts/bench/agent.py [--cameras 16] [--window 30] [--modes keyframe,adaptive,full]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SITE_ID, AGENT_ID = "xa-bench", "pi-bench"
PREFIX = f"matthan/v1/{SITE_ID}/{AGENT_ID}"
STATION = ROOT / "tests" / "e2e" / "station.py"
PSS_GOAL_MB = 250.0
HELPER_NAME = "matthan-onvif"  # agent.discovery.remote.PROCESS_NAME: the short-lived ONVIF interrogation helper
P95_GOAL_S = 1.0
STOP_TIMEOUT_S = 15.0  # the agent promises to stop within 10 s on SIGTERM
DRAIN_S = 3.0  # after the window, wait this long for events captured inside it to reach the station
MATCH_BEFORE_S, MATCH_AFTER_S = 1.0, 2.5  # a start within [crossing start - 1, crossing end + 2.5] is that crossing


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def scenario(cameras: int) -> dict:
    """The e2e tests' street scene (so the encoded streams are usually cached) on every camera, phases spread."""
    return {
        "defaults": {"fps": 15, "keyframe_s": 2, "sub": [640, 360], "main": [960, 540]},
        "scenes": {"street": {"loop_s": 20, "seed": 3, "actors": [
            {"name": "walker", "kind": "person", "start_s": 3, "duration_s": 7, "y": 0.8}]}},
        "cameras": [{"name": f"cam{i + 1:02d}", "scene": "street", "phase_s": round(i * 20.0 / cameras, 2)}
                    for i in range(cameras)],
    }


def _die_with_parent() -> None:
    """preexec: SIGKILL the child if the thread that started it (the Lan's long-lived thread) or we die."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def nearest_rank(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def _r3(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def summary(values: list[float]) -> dict:
    return {"count": len(values), "p50_s": _r3(nearest_rank(values, 0.5)), "p95_s": _r3(nearest_rank(values, 0.95)),
            "max_s": _r3(max(values) if values else None)}


# -- the station's file -----------------------------------------------------------------------------------------
class StationFile:
    """Reads the station's JSON lines incrementally (the file only grows) and keeps what the benchmark needs."""

    def __init__(self, path: Path, cameras: set[str]) -> None:
        self.path, self.cameras = path, cameras
        self._offset = 0
        self._partial = b""
        self.state: dict[str, str] = {}
        self.reason: dict[str, str] = {}
        self.all_online_t: float | None = None
        self.starts: list[tuple[float, dict]] = []  # (receive time, payload)
        self.messages = 0

    def poll(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                self._line(json.loads(line))

    def _line(self, rec: dict) -> None:
        self.messages += 1
        topic, text = rec["topic"], rec.get("text")
        if not topic.startswith(PREFIX + "/") or text is None or not text.startswith("{"):
            return
        parts = topic[len(PREFIX) + 1:].split("/")
        if len(parts) == 3 and parts[0] == "cameras" and parts[2] == "status":
            body = json.loads(text)
            self.state[parts[1]] = body.get("state", "")
            self.reason[parts[1]] = body.get("reason", "")
            if self.all_online_t is None and self.online() >= len(self.cameras):
                self.all_online_t = rec["t"]
        elif parts == ["events", "motion"]:
            body = json.loads(text)
            if body.get("type") == "start" and not body.get("historical"):
                self.starts.append((rec["t"], body))

    def online(self) -> int:
        return sum(1 for c in self.cameras if self.state.get(c) == "online")


# -- processes --------------------------------------------------------------------------------------------------
def tree(pid: int) -> list:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_s(p: Any) -> float | None:
    import psutil

    try:
        t = p.cpu_times()
        return t.user + t.system
    except psutil.NoSuchProcess:
        return None


class TreeCpu:
    """CPU seconds of a process tree between start() and stop(); children born in between count in full."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._before: dict[tuple[int, float], float] = {}
        self.exited = 0

    def start(self) -> None:
        self._before = {}
        for p in tree(self.pid):
            v = cpu_s(p)
            if v is not None:
                self._before[(p.pid, p.create_time())] = v

    def stop(self) -> tuple[float, int]:
        import psutil

        total, seen = 0.0, set()
        procs = tree(self.pid)
        for p in procs:
            try:
                key = (p.pid, p.create_time())
            except psutil.NoSuchProcess:
                continue
            v = cpu_s(p)
            if v is None:
                continue
            seen.add(key)
            total += v - self._before.get(key, 0.0)
        self.exited = len(set(self._before) - seen)  # their time after start() is lost: reported, not guessed
        return total, len(procs)


def pss_kinds(pid: int) -> dict[str, int]:
    """Pss_Anon / Pss_File / Pss_Shmem in bytes (smaps_rollup): anonymous memory is ours to shrink, file-backed
    pages are shared libraries whose cost falls as more processes map them."""
    kinds: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key.startswith("Pss_"):
                    kinds[key[4:].lower()] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return kinds


def memory(pid: int) -> tuple[float, float, dict[str, float], dict[str, dict[str, float]]]:
    """(PSS MB, RSS MB, PSS MB per process, PSS kinds MB per process) of the tree; the root is `supervisor`."""
    import psutil

    pss = rss = 0
    each: dict[str, float] = {}
    kinds: dict[str, dict[str, float]] = {}
    for p in tree(pid):
        try:
            m = p.memory_full_info()
            name = "supervisor" if p.pid == pid else p.name()
            if "resource_tracker" in " ".join(p.cmdline()):
                name = "resource_tracker"
        except psutil.NoSuchProcess:
            continue
        pss += m.pss
        rss += m.rss
        each[name] = round(each.get(name, 0.0) + m.pss / 2**20, 1)
        mine = kinds.setdefault(name, {})
        for kind, size in pss_kinds(p.pid).items():
            mine[kind] = round(mine.get(kind, 0.0) + size / 2**20, 1)
    return pss / 2**20, rss / 2**20, each, kinds


class RoundPeak:
    """The agent's PSS during the start-up discovery round, while the ONVIF interrogation helper lives."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_mb = 0.0
        self.helper_mb = 0.0
        self.helper_seen_s: float | None = None
        self._t0 = time.monotonic()
        self._helper_gone_s: float | None = None

    def helper_alive(self) -> bool:
        import psutil

        for p in tree(self.pid)[1:]:
            with contextlib.suppress(psutil.NoSuchProcess):
                if p.name() == HELPER_NAME:
                    return True
        return False

    def sample(self) -> None:
        pss, _, each, _ = memory(self.pid)
        self.peak_mb = max(self.peak_mb, pss)
        helper = each.get(HELPER_NAME)
        now = time.monotonic() - self._t0
        if helper is not None:
            self.helper_mb = max(self.helper_mb, helper)
            self.helper_seen_s = self.helper_seen_s if self.helper_seen_s is not None else now
        elif self.helper_seen_s is not None and self._helper_gone_s is None:
            self._helper_gone_s = now

    def report(self) -> dict[str, Any]:
        return {"pss_mb_peak": round(self.peak_mb, 1), "helper_pss_mb": round(self.helper_mb, 1),
                "helper_exited_after_s": None if self._helper_gone_s is None else round(self._helper_gone_s, 1)}


def thread_cpu_s(native_id: int | None) -> float | None:
    import psutil

    if native_id is None:
        return None
    for t in psutil.Process().threads():
        if t.id == native_id:
            return t.user_time + t.system_time
    return None


def busy_s() -> float:
    import psutil

    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)


# -- one mode ---------------------------------------------------------------------------------------------------
class ModeRun:
    """Broker, station and agent for one decode mode; close() stops all of them, whatever state they are in."""

    def __init__(self, lan: Any, cluster: Any, workdir: Path, args: argparse.Namespace, mode: str) -> None:
        self.lan, self.cluster, self.workdir, self.args, self.mode = lan, cluster, workdir, args, mode
        self.broker: Any = None
        self.station: subprocess.Popen[bytes] | None = None
        self.agent: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True)

    @property
    def log_path(self) -> Path:
        return self.workdir / "agent.log"

    def _spawn(self, argv: list[str], out: Path) -> subprocess.Popen[bytes]:
        def start() -> subprocess.Popen[bytes]:
            with open(out, "ab") as fh:
                return subprocess.Popen(argv, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=_die_with_parent)

        return self.lan.run_in(self.lan.agent_ns, start)  # processes inherit the creator thread's namespace

    def start_site(self) -> None:
        from tests.rig.broker import Broker

        self.broker = Broker(self.workdir / "broker", persistence=False)
        self.lan.run_in(self.lan.agent_ns, self.broker.start)  # 127.0.0.1 of the agent namespace
        self.station = self._spawn([sys.executable, str(STATION), self.broker.host, str(self.broker.port), PREFIX,
                                    str(self.workdir / "station.jsonl")], self.workdir / "station.log")
        cfg = {
            "site_id": SITE_ID,
            "agent_id": AGENT_ID,
            "mqtt": {"host": self.broker.host, "port": self.broker.port, "keepalive": 10},
            "discovery": {"interfaces": ["lan0"], "interval_s": self.args.discovery_interval, "probe_timeout_s": 2,
                          "credentials": [{"username": "admin", "password": "matthan123"}]},
            "motion": {"decode_mode": self.mode, "analysis_fps": self.args.analysis_fps},
            "storage": {"state_dir": str(self.workdir / "state")},
            "health": {"interval_s": 10},
            "workers": {"count": self.args.workers},
        }
        import yaml

        path = self.workdir / "agent.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        path.chmod(0o600)  # it holds the cameras' password; the agent warns otherwise
        time.sleep(1.0)  # let the station connect and subscribe before the agent publishes anything

    def start_agent(self) -> float:
        argv = [sys.executable, "-m", "agent", "--log-level", "INFO", "--config", str(self.workdir / "agent.yaml"),
                "run"]
        t0 = time.time()
        self.agent = self._spawn(argv, self.log_path)
        return t0

    def stop_agent(self) -> tuple[float | None, int | None]:
        """SIGTERM, then (after STOP_TIMEOUT_S) SIGKILL of the whole tree: (seconds to stop, exit code)."""
        if self.agent is None:
            return None, None
        t0 = time.monotonic()
        if self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
        try:
            code = self.agent.wait(STOP_TIMEOUT_S)
            return round(time.monotonic() - t0, 2), code
        except subprocess.TimeoutExpired:
            kill_tree(self.agent.pid)
            return None, self.agent.poll()

    def close(self) -> None:
        if self.agent is not None and self.agent.poll() is None:
            kill_tree(self.agent.pid)
        if self.station is not None and self.station.poll() is None:
            self.station.terminate()
            try:
                self.station.wait(5)
            except subprocess.TimeoutExpired:
                self.station.kill()
                self.station.wait(5)
        if self.broker is not None:
            self.broker.close()

    def log_tail(self, n: int = 15) -> list[str]:
        if not self.log_path.exists():
            return []
        return self.log_path.read_text(errors="replace").splitlines()[-n:]


def kill_tree(pid: int) -> None:
    import psutil

    procs = tree(pid)
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(procs, timeout=5)


def run_mode(lan: Any, cluster: Any, workdir: Path, args: argparse.Namespace, mode: str, deadline: float) -> dict:
    from tests.e2e.rig import crossings

    names = set(cluster.names())
    infos = {n: cluster.info(n) for n in names}
    run = ModeRun(lan, cluster, workdir, args, mode)
    doc: dict[str, Any] = {"bench": "agent", "mode": mode, "analysis_fps": args.analysis_fps,
                           "cameras": len(names), "sub": "640x360", "main": "960x540 (unused)", "fps": 15,
                           "keyframe_s": 2, "loop_s": 20, "cpu_count": os.cpu_count(),
                           "workers": args.workers or os.cpu_count(), "window_s": args.window}
    try:
        run.start_site()
        station = StationFile(workdir / "station.jsonl", names)
        t_start = run.start_agent()
        assert run.agent is not None
        online_deadline = time.monotonic() + min(args.online_timeout, max(5.0, deadline - time.monotonic()))
        round_peak = RoundPeak(run.agent.pid)
        while station.all_online_t is None and time.monotonic() < online_deadline:
            if run.agent.poll() is not None:
                raise RuntimeError(f"the agent exited ({run.agent.returncode}) before all cameras were online")
            time.sleep(0.25)  # polling the station's file, bounded by the deadline
            station.poll()
            round_peak.sample()
        doc["all_online"] = station.all_online_t is not None
        doc["online_s"] = round(station.all_online_t - t_start, 2) if station.all_online_t else None
        if station.all_online_t is None:
            doc["online_at_timeout"] = station.online()
            doc["not_online"] = {c: f"{station.state.get(c, 'none')}/{station.reason.get(c, '')}"
                                 for c in sorted(names) if station.state.get(c) != "online"}
        # The start-up round's ONVIF helper exits after its idle time (agent.discovery.remote); the steady state, which
        # the agent keeps between rounds (every 5 minutes by default), starts when it has. Its peak is reported apart.
        helper_deadline = time.monotonic() + 90.0
        while round_peak.helper_alive() and time.monotonic() < helper_deadline:
            round_peak.sample()
            time.sleep(0.5)  # polling the process tree, bounded by the deadline
        round_peak.sample()  # notes when the helper was gone
        doc["round"] = round_peak.report()
        time.sleep(args.settle)

        # -- the steady-state window --
        agent_cpu = TreeCpu(run.agent.pid)
        sim_pids = cluster.pids()
        sim_cpu = [TreeCpu(pid) for pid in sim_pids]
        loop_thread = next((t.native_id for t in threading.enumerate() if t.name == "sim-cluster"), None)
        peers = {"broker": TreeCpu(run.broker.pid), "station": TreeCpu(run.station.pid)}  # type: ignore[union-attr]
        for c in (agent_cpu, *sim_cpu, *peers.values()):
            c.start()
        loop0 = thread_cpu_s(loop_thread)
        busy0 = busy_s()
        w0_wall, w0 = time.time(), time.monotonic()
        samples: list[tuple[float, float]] = []
        by_process: dict[str, float] = {}
        by_kind: dict[str, dict[str, float]] = {}
        for k in (1, 2, 3):  # memory at a third, two thirds and the end of the window
            time.sleep(max(0.0, w0 + args.window * k / 3 - time.monotonic()))
            pss, rss, by_process, by_kind = memory(run.agent.pid)
            samples.append((pss, rss))
        elapsed = time.monotonic() - w0
        w1_wall = time.time()
        agent_s, nprocs = agent_cpu.stop()
        sim_s = sum(c.stop()[0] for c in sim_cpu)
        loop1 = thread_cpu_s(loop_thread)
        busy1 = busy_s()
        peer_s = {k: c.stop()[0] for k, c in peers.items()}

        def pct(seconds: float) -> float:
            return round(100.0 * seconds / elapsed, 1)

        # events captured in the window that reach the station shortly after it
        time.sleep(DRAIN_S)
        station.poll()
        doc["window_measured_s"] = round(elapsed, 2)
        doc["agent"] = {
            "cpu_percent": pct(agent_s),
            "cpu_percent_per_camera": round(pct(agent_s) / len(names), 2),
            "pss_mb": round(samples[-1][0], 1),
            "pss_mb_max": round(max(s[0] for s in samples), 1),
            "rss_mb": round(samples[-1][1], 1),
            "rss_mb_max": round(max(s[1] for s in samples), 1),
            "processes": nprocs,
            "pss_mb_by_process": by_process,
            "pss_mb_by_kind": by_kind,
            "exited_in_window": agent_cpu.exited,
        }
        doc["simulator"] = {
            "rtsp_host_cpu_percent": pct(sim_s),
            "loop_thread_cpu_percent": None if loop0 is None or loop1 is None else pct(loop1 - loop0),
        }
        doc["broker_cpu_percent"] = pct(peer_s["broker"])
        doc["station_cpu_percent"] = pct(peer_s["station"])
        doc["machine_cpu_percent"] = pct(busy1 - busy0)

        # -- latency --
        in_window = [(t, e) for t, e in station.starts if w0_wall <= float(e["ts"]) <= w1_wall]
        lat_ts = [t - float(e["ts"]) for t, e in in_window]
        lat_start = [t - float(e["start_ts"]) for t, e in in_window]
        lat_onset, matched, unmatched = [], 0, []
        for t, e in in_window:
            info = infos.get(e["camera"])
            spans = crossings(info, float(e["start_ts"]) - 40, float(e["start_ts"]) + 40) if info else []
            hit = [a for a, b in spans if a - MATCH_BEFORE_S <= float(e["start_ts"]) <= b + MATCH_AFTER_S]
            if hit:
                matched += 1
                lat_onset.append(t - hit[0])
            else:
                unmatched.append(e["camera"])
        # crossings that start well inside the window must each have produced a start (received by now)
        missed, expected = [], 0
        for name, info in infos.items():
            for a, b in crossings(info, w0_wall - 30, w1_wall + 30):
                if not w0_wall + 1.0 <= a <= w1_wall - 4.0:
                    continue
                expected += 1
                if not any(e["camera"] == name and a - MATCH_BEFORE_S <= float(e["start_ts"]) <= b + MATCH_AFTER_S
                           for _t, e in station.starts):
                    missed.append(name)
        doc["latency"] = {"basis": "station receive time - payload ts", **summary(lat_ts)}
        doc["latency_from_start_ts"] = summary(lat_start)
        doc["latency_from_crossing_onset"] = summary(lat_onset)
        doc["starts_in_window"] = len(in_window)
        doc["starts_matching_a_crossing"] = matched
        doc["starts_without_crossing"] = sorted(unmatched)
        doc["crossings_well_inside_window"] = expected
        doc["crossings_missed"] = sorted(missed)
        doc["cameras_online_at_end"] = station.online()
        doc["goals"] = {
            "pss_mb<=250": doc["agent"]["pss_mb_max"] <= PSS_GOAL_MB,
            "latency_p95_s<=1": None if doc["latency"]["p95_s"] is None else doc["latency"]["p95_s"] <= P95_GOAL_S,
        }
        stop_s, code = run.stop_agent()
        doc["stop_s"], doc["exit_code"] = stop_s, code
        doc["agent_warnings"] = sum(1 for line in run.log_path.read_text(errors="replace").splitlines()
                                    if " WARNING " in line or " ERROR " in line)
    except Exception as exc:  # one mode failing still prints what it has, and the next mode runs
        doc["error"] = f"{type(exc).__name__}: {exc}"
        doc["agent_log_tail"] = run.log_tail()
    finally:
        run.close()
    return doc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", type=int, default=16)
    ap.add_argument("--window", type=float, default=30.0, help="steady-state measurement window, s")
    ap.add_argument("--settle", type=float, default=3.0, help="wait after all cameras are online, s")
    ap.add_argument("--analysis-fps", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=0, help="workers.count (0 = one per CPU)")
    ap.add_argument("--modes", default="keyframe,adaptive,full")
    ap.add_argument("--discovery-interval", type=float, default=300.0,
                    help="discovery.interval_s (the shipped default; under 120 s the ONVIF helper stays up)")
    ap.add_argument("--online-timeout", type=float, default=90.0)
    ap.add_argument("--budget", type=float, default=420.0, help="give up on further modes after this many s")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, station file)")
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in ("keyframe", "adaptive", "full")]
    if bad:
        ap.error(f"unknown mode(s) {bad}")

    from agent.simulator import parse_scenario
    from agent.simulator.cluster import Cluster
    from agent.simulator.netns import Lan, netns_unavailable_reason
    from agent.simulator.rtsp import rtsp_unavailable_reason

    reason = netns_unavailable_reason() or rtsp_unavailable_reason()
    if not reason and not shutil.which("mosquitto") and not os.path.exists("/usr/sbin/mosquitto"):
        reason = "mosquitto not installed (apt-get install mosquitto)"
    if reason:
        emit({"bench": "agent", "error": reason})
        return 69

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # unwinds through every finally below

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background (SIG_IGN)
    t_begin = time.monotonic()
    deadline = t_begin + args.budget
    workdir = Path(tempfile.mkdtemp(prefix="matthan-bench-agent-"))
    failed = False
    try:
        with Lan() as lan:
            cluster = Cluster(parse_scenario(scenario(args.cameras)), lan=lan)
            try:
                cluster.start()
                for mode in modes:
                    if time.monotonic() + args.window + 40 > deadline:
                        emit({"bench": "agent", "mode": mode, "error": f"skipped: over the {args.budget:.0f} s "
                                                                       "budget"})
                        failed = True
                        continue
                    doc = run_mode(lan, cluster, workdir / mode, args, mode, deadline)
                    failed = failed or "error" in doc
                    emit(doc)
            finally:
                cluster.close()
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        print(f"total {time.monotonic() - t_begin:.0f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
