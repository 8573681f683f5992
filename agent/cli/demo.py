"""`matthan-agent demo`: the agent against a simulated village cluster, with a local broker and a live console.

    matthan-agent demo                       # 6 cameras, until Ctrl-C (namespace mode when root)
    matthan-agent demo --duration 60 --plain # CI: one line per change, stops by itself after 60 s
    matthan-agent demo --loopback            # no namespaces: cameras on 127.0.0.1, discovery off
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EX_USAGE = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cameras", type=int, default=6, metavar="N", help="simulated cameras (default 6, at most 64)")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="stop by itself S seconds after everything started (default: run until Ctrl-C)")
    parser.add_argument("--loopback", action="store_true",
                        help="cameras on 127.0.0.1 listed by URL, discovery off (default when not root)")
    parser.add_argument("--plain", action="store_true",
                        help="one line per change instead of a live table (the default when not a terminal)")
    parser.add_argument("--dir", type=Path, default=None, metavar="DIR",
                        help="where the config, logs, agent state and snapshots go (default .demo/run-<time> in "
                             "the project, else a new temporary directory)")


def run(args: argparse.Namespace) -> int:
    from agent.demo.runner import DemoOptions, run_demo

    if not 1 <= args.cameras <= 64:
        print("matthan-agent demo: --cameras must be between 1 and 64", file=sys.stderr)
        return EX_USAGE
    if args.duration is not None and args.duration <= 0:
        print("matthan-agent demo: --duration must be a positive number of seconds", file=sys.stderr)
        return EX_USAGE
    return run_demo(DemoOptions(cameras=args.cameras, duration_s=args.duration, loopback=args.loopback,
                                plain=args.plain, demo_dir=args.dir))
