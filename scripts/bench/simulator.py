#!/usr/bin/env python3
"""Simulator benchmark: what N simulated cameras cost this machine, so agent benchmarks can subtract it.

Starts `matthan-agent simulate --cameras N` (640x360 sub + 1280x720 main, 15 fps by default) as a child process,
proves every substream streams by reading it with PyAV, then measures the simulator's own CPU and memory over all
its processes (the simulate process with its ONVIF/WS-Discovery loop, and the GStreamer RTSP host):
  - idle: no RTSP client connected;
  - streaming: every substream read by one client (packets demuxed here, not decoded, so our side stays cheap).
Afterwards each main stream is opened once and one frame decoded, to check its size. It passes (exit 0) only when
every substream delivered at least MIN_SUB_FPS frames per second at 640x360 and every main stream is 1280x720.
Prints one JSON object. Run from the project root:
    .venv/bin/python scripts/bench/simulator.py [--cameras 16] [--seconds 10] [--netns]
With --netns the cameras live in a private namespace pair and the readers run in the agent namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
READ_OPEN_TIMEOUT_S = 20.0
READ_TIMEOUT_S = 5.0
MAX_START_S = 300.0  # first run encodes the scene (cached afterwards)
FPS = 15  # the default scenario's frame rate
MIN_SUB_FPS = FPS - 1  # one frame of slack: the window's edges may cut a frame off either end
SUB_SIZE, MAIN_SIZE = "640x360", "1280x720"  # the default scenario's sub and main streams


def tree(pid: int) -> list:
    import psutil

    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def sample(procs: list, seconds: float) -> dict:
    """CPU % of one core (summed over processes) across `seconds`, and memory at the end."""
    for p in procs:
        p.cpu_percent(None)
    t0 = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    cpu = sum(p.cpu_percent(None) for p in procs) * (seconds / elapsed)
    rss = sum(p.memory_info().rss for p in procs)
    try:
        pss = sum(p.memory_full_info().pss for p in procs)
    except (AttributeError, OSError):
        pss = 0
    return {"cpu_percent": round(cpu, 1), "rss_mb": round(rss / 2**20, 1), "pss_mb": round(pss / 2**20, 1)}


def reader(uri: str, stop: threading.Event, counts: dict, key: str, errors: dict) -> None:
    import av

    try:
        with av.open(uri, options={"rtsp_transport": "tcp"}, timeout=(READ_OPEN_TIMEOUT_S, READ_TIMEOUT_S)) as c:
            stream = c.streams.video[0]
            counts[key] = 0
            counts[key + ":size"] = f"{stream.codec_context.width}x{stream.codec_context.height}"
            for packet in c.demux(stream):
                if packet.size:
                    counts[key] += 1
                if stop.is_set():
                    break
    except (av.error.FFmpegError, OSError) as exc:
        errors[key] = f"{type(exc).__name__}: {exc}"


def with_credentials(camera: dict, uri: str) -> str:
    return uri.replace("rtsp://", f"rtsp://{camera['username']}:{camera['password']}@", 1)


def main_size(uri: str, sizes: dict, key: str, errors: dict) -> None:
    """Open one main stream and decode its first frame; record "WxH"."""
    import av

    try:
        with av.open(uri, options={"rtsp_transport": "tcp"}, timeout=(READ_OPEN_TIMEOUT_S, READ_TIMEOUT_S)) as c:
            for frame in c.decode(c.streams.video[0]):
                sizes[key] = f"{frame.width}x{frame.height}"
                break
    except (av.error.FFmpegError, OSError) as exc:
        errors[key] = f"{type(exc).__name__}: {exc}"


def check_main_streams(cameras: list[dict]) -> tuple[dict, dict]:
    """Each camera's main stream size, all opened at once (after the measurement, so they do not disturb it)."""
    sizes: dict = {}
    errors: dict = {}
    threads = [threading.Thread(target=main_size, args=(with_credentials(c, c["main_uri"]), sizes, c["name"], errors),
                                daemon=True) for c in cameras]
    for t in threads:
        t.start()
    for t in threads:
        t.join(READ_OPEN_TIMEOUT_S + READ_TIMEOUT_S + 5)
    return sizes, errors


def measure(cameras: list[dict], sim_pid: int, args: argparse.Namespace) -> dict:
    procs = tree(sim_pid)
    idle = sample(procs, min(args.seconds, 5.0))
    stop = threading.Event()
    counts: dict = {}
    errors: dict = {}
    threads = [threading.Thread(target=reader, daemon=True,
                                args=(with_credentials(c, c["sub_uri"]), stop, counts, c["name"], errors))
               for c in cameras]
    for t in threads:
        t.start()
    deadline = time.monotonic() + READ_OPEN_TIMEOUT_S + 10
    while time.monotonic() < deadline and sum(1 for c in cameras if counts.get(c["name"], 0) > 0) + len(
            errors) < len(cameras):
        time.sleep(0.1)
    before = {c["name"]: counts.get(c["name"], 0) for c in cameras}
    streaming = sample(tree(sim_pid), args.seconds)
    after = {c["name"]: counts.get(c["name"], 0) for c in cameras}
    stop.set()
    for t in threads:
        t.join(READ_TIMEOUT_S + 5)
    fps = {n: round((after[n] - before[n]) / args.seconds, 1) for n in after}
    sub_sizes = {c["name"]: counts.get(c["name"] + ":size", "?") for c in cameras}
    main_sizes, main_errors = check_main_streams(cameras)
    n = len(cameras)
    return {
        "idle": {**idle, "cpu_percent_per_camera": round(idle["cpu_percent"] / n, 2),
                 "rss_mb_per_camera": round(idle["rss_mb"] / n, 1)},
        "streaming": {**streaming, "cpu_percent_per_camera": round(streaming["cpu_percent"] / n, 2),
                      "rss_mb_per_camera": round(streaming["rss_mb"] / n, 1),
                      "pss_mb_per_camera": round(streaming["pss_mb"] / n, 1)},
        "substreams_ok": sum(1 for name, v in fps.items() if v >= MIN_SUB_FPS and sub_sizes[name] == SUB_SIZE),
        "substream_min_fps_required": MIN_SUB_FPS,
        "substream_sizes": sorted(set(sub_sizes.values())),
        "substream_fps_min": min(fps.values()) if fps else 0,
        "substream_fps_max": max(fps.values()) if fps else 0,
        "substream_slow": {name: v for name, v in fps.items() if v < MIN_SUB_FPS},
        "mainstreams_ok": sum(1 for c in cameras if main_sizes.get(c["name"]) == MAIN_SIZE),
        "mainstream_sizes": sorted({main_sizes.get(c["name"], "?") for c in cameras}),
        "reader_errors": errors,
        "main_errors": main_errors,
        "processes": len(procs),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10.0, help="measurement window while streaming")
    ap.add_argument("--netns", action="store_true", help="cameras in a private namespace pair (root)")
    ap.add_argument("--child-measure", help=argparse.SUPPRESS)  # JSON args when re-run inside the agent namespace
    args = ap.parse_args()
    if args.child_measure:
        spec = json.loads(args.child_measure)
        print(json.dumps(measure(spec["cameras"], spec["pid"], args)), flush=True)
        return 0

    argv = [sys.executable, "-m", "agent", "simulate", "--cameras", str(args.cameras), "--json"]
    argv.append("--netns" if args.netns else "--loopback")
    t0 = time.monotonic()
    sim = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        timer = threading.Timer(MAX_START_S, sim.kill)
        timer.start()
        line = sim.stdout.readline()  # type: ignore[union-attr]
        timer.cancel()
        if not line:
            print(sim.stderr.read(), file=sys.stderr)  # type: ignore[union-attr]
            return 1
        cameras = json.loads(line)
        start_s = time.monotonic() - t0
        if args.netns:
            agent_ns = sim.stdout.readline().split()[2]  # type: ignore[union-attr]  # "agent namespace: NAME ..."
            spec = json.dumps({"cameras": cameras, "pid": sim.pid})
            out = subprocess.run(["ip", "netns", "exec", agent_ns, sys.executable, str(Path(__file__).resolve()),
                                  "--seconds", str(args.seconds), "--child-measure", spec],
                                 cwd=ROOT, capture_output=True, text=True, timeout=300)
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                return 1
            result = json.loads(out.stdout)
        else:
            result = measure(cameras, sim.pid, args)
        doc = {"bench": "simulator", "cameras": args.cameras, "mode": "netns" if args.netns else "loopback",
               "sub": SUB_SIZE, "main": MAIN_SIZE, "fps": FPS, "start_s": round(start_s, 1),
               "cpu_count": os.cpu_count(), "window_s": args.seconds, **result}
        doc["ok"] = result["substreams_ok"] == result["mainstreams_ok"] == args.cameras
        print(json.dumps(doc), flush=True)
        return 0 if doc["ok"] else 1
    finally:
        sim.terminate()
        try:
            sim.wait(20)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait(5)


if __name__ == "__main__":
    sys.exit(main())
