#!/usr/bin/env python3
"""Discovery benchmark: time to discover and interrogate N simulated cameras, and the RSS growth it causes.

Prints JSON lines:
  {"bench": "discovery", "cameras": 40, "found": 40, "interrogated_ok": 40, "seconds": ..., "probe_window_s": ...,
   "rss_growth_mb": ..., "rss_import_mb": ..., ...}             goals: seconds <= 5, rss_growth_mb <= 30
  {"bench": "discovery_repeat", ...}                            a second round in the same process (steady state)

The cameras are the project simulator's, each with its own address in a private network namespace (root needed);
the WS-Discovery multicast never leaves it. The discovery round runs in a child process inside the agent
namespace, so the simulator's own memory is not counted: `rss_growth_mb` is the child's RSS after the round minus
its RSS after importing the agent's discovery code (the WSDL parse, 40 ONVIF clients and the probe are counted;
the interpreter and imports are reported separately as `rss_import_mb`). Run from the project root:
    .venv/bin/python scripts/bench/discovery.py [--cameras 40] [--window 1.5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def child(args: argparse.Namespace) -> int:
    """Inside the agent namespace: one discovery round (two with --repeat), measured from inside."""
    import gc

    import psutil

    proc = psutil.Process()
    rss_start = proc.memory_info().rss
    import asyncio

    from agent.discovery.service import discover_once
    from agent.discovery.settings import Credential, DiscoverySettings
    from agent.discovery.wsd import Interface

    gc.collect()
    rss_imported = proc.memory_info().rss
    settings = DiscoverySettings(probe_window_s=args.window, credentials=(Credential(args.user, args.password),),
                                 max_concurrent=args.concurrency)
    iface = [Interface(args.iface_name, args.iface_ip)]

    async def rounds() -> list[dict]:
        out = []
        for n in range(2):
            t0 = time.monotonic()
            report = await discover_once(settings, interfaces=iface)
            seconds = time.monotonic() - t0
            gc.collect()
            rss = proc.memory_info().rss
            out.append({
                "bench": "discovery" if n == 0 else "discovery_repeat",
                "cameras": args.cameras,
                "found": len(report.rows),
                "interrogated_ok": sum(1 for r in report.rows if r.ok),
                "seconds": round(seconds, 3),
                "probe_window_s": args.window,
                "beyond_window_s": round(seconds - args.window, 3),  # interrogation overlaps the window
                "rss_growth_mb": round((rss - rss_imported) / 2**20, 1),
                "rss_import_mb": round((rss_imported - rss_start) / 2**20, 1),
                "rss_total_mb": round(rss / 2**20, 1),
                "failures": sorted({r.reason.value for r in report.rows if r.reason}),
            })
        return out

    for line in asyncio.run(rounds()):
        emit(line)
    return 0


def parent(args: argparse.Namespace) -> int:
    from agent.simulator.cluster import Cluster
    from agent.simulator.netns import AGENT_IF, AGENT_IP, Lan
    from agent.simulator.scenario import parse_scenario

    with Lan() as lan:
        t0 = time.monotonic()
        cluster = Cluster(parse_scenario({}, cameras=args.cameras), lan=lan).start()
        try:
            sim_start_s = time.monotonic() - t0
            info = cluster.info(cluster.names()[0])
            argv = [sys.executable, str(Path(__file__).resolve()), "--child", "--cameras", str(args.cameras),
                    "--window", str(args.window), "--concurrency", str(args.concurrency),
                    "--iface-name", AGENT_IF, "--iface-ip", AGENT_IP, "--user", info.username,
                    "--password", info.password]
            proc = lan.run(lan.agent_ns, argv, capture_output=True, text=True, cwd=ROOT, timeout=300)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return proc.returncode
            for line in proc.stdout.splitlines():
                doc = json.loads(line)
                doc["simulator_start_s"] = round(sim_start_s, 1)
                if doc["bench"] == "discovery":
                    doc["goal_seconds"], doc["goal_rss_growth_mb"] = 5.0, 30.0
                emit(doc)
        finally:
            cluster.close()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", type=int, default=40)
    ap.add_argument("--window", type=float, default=1.5, help="WS-Discovery collection window in seconds")
    ap.add_argument("--concurrency", type=int, default=16, help="cameras interrogated at once")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--iface-name", help=argparse.SUPPRESS)
    ap.add_argument("--iface-ip", help=argparse.SUPPRESS)
    ap.add_argument("--user", help=argparse.SUPPRESS)
    ap.add_argument("--password", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not 1 <= args.cameras <= 200:
        ap.error("--cameras must be 1..200")
    return child(args) if args.child else parent(args)


if __name__ == "__main__":
    sys.exit(main())
