"""`matthan-agent simulate`: start simulated ONVIF/RTSP cameras and print their addresses until Ctrl-C.

    matthan-agent simulate --cameras 6 --loopback                 # 127.0.0.1, free ports, unicast discovery only
    matthan-agent simulate --scenario village.yaml --netns        # a private namespace pair (root); multicast works
    matthan-agent simulate --cameras 2 --loopback --control /tmp/sim.sock   # faults from another process

Control lines (JSON, one per line, on the unix socket): {"camera": "cam01", "fault": "freeze"} starts a fault,
{"camera": "cam01", "fault": "freeze", "clear": true} ends it, {"list": true} prints every camera. Each gets one
JSON reply line: {"ok": true, ...} or {"error": "..."}.
"""

from __future__ import annotations

import argparse
import json
import sys

EX_USAGE = 64
EX_UNAVAILABLE = 69
EX_CONFIG = 78


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cameras", type=int, default=None, metavar="N",
                        help="number of cameras (default: those in the scenario, else 4)")
    parser.add_argument("--scenario", metavar="FILE", help="scenario file (YAML or JSON); see docs/simulator.md")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--loopback", action="store_true",
                      help="serve on 127.0.0.1 with distinct free ports; discovery by unicast only (default)")
    mode.add_argument("--netns", action="store_true",
                      help="serve inside a new private namespace pair (needs root); prints the agent namespace")
    parser.add_argument("--control", metavar="PATH", help="unix socket for fault control from other processes")
    parser.add_argument("--json", action="store_true", help="print the camera list as JSON")


def _describe(cluster: object, as_json: bool) -> str:
    infos = cluster.infos()  # type: ignore[attr-defined]
    if as_json:
        return json.dumps([{"name": i.name, "ip": i.ip, "onvif_port": i.onvif_port, "rtsp_port": i.rtsp_port,
                            "wsd_port": i.wsd_port, "username": i.username, "password": i.password,
                            "endpoint": i.endpoint, "xaddr": i.xaddr, "main_uri": i.main_uri, "sub_uri": i.sub_uri,
                            "snapshot_uri": i.snapshot_uri, "quirks": sorted(i.quirks)} for i in infos])
    lines = [f"{'camera':<12} {'device service':<44} {'WS-Discovery':<22} substream"]
    for i in infos:
        lines.append(f"{i.name:<12} {i.xaddr:<44} {i.ip + ':' + str(i.wsd_port):<22} {i.sub_uri}")
    lines.append(f"credentials: {infos[0].username} / {infos[0].password} (unless the scenario says otherwise)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from agent.simulator.cluster import Cluster
    from agent.simulator.control import ControlServer
    from agent.simulator.encode import EncodeUnavailable
    from agent.simulator.netns import Lan, NetnsUnavailable
    from agent.simulator.rtsp import RtspHostError, RtspUnavailable
    from agent.simulator.scenario import ScenarioError, default_scenario, load_scenario

    if args.cameras is not None and not 1 <= args.cameras <= 256:
        print("matthan-agent simulate: --cameras must be between 1 and 256", file=sys.stderr)
        return EX_USAGE
    try:
        scenario = (load_scenario(args.scenario, cameras=args.cameras) if args.scenario
                    else default_scenario(args.cameras or 4))
    except ScenarioError as exc:
        print(f"matthan-agent simulate: {exc}", file=sys.stderr)
        return EX_CONFIG
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lan = None
    try:
        if args.netns:
            lan = Lan().open()
        with Cluster(scenario, lan=lan, loopback=lan is None) as cluster:
            control = ControlServer(cluster, args.control) if args.control else None
            print(_describe(cluster, args.json), flush=True)
            if lan is not None:
                print(f"agent namespace: {lan.agent_ns} (run clients with: ip netns exec {lan.agent_ns} ...)",
                      flush=True)
            print("simulating; Ctrl-C stops every camera", file=sys.stderr, flush=True)
            while not stop.wait(0.5):
                pass
            if control is not None:
                control.close()
    except (NetnsUnavailable, RtspUnavailable, EncodeUnavailable) as exc:
        print(f"matthan-agent simulate: cannot start: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    except RtspHostError as exc:
        print(f"matthan-agent simulate: the RTSP host failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if lan is not None:
            lan.close()
    return 0
