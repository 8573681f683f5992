"""`matthan-agent run`: the daemon (what systemd starts)."""

from __future__ import annotations

import argparse

from agent.cli import default_config_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_config", nargs="?", metavar="FILE",
                        help="configuration file (same as the global --config)")


def run(args: argparse.Namespace) -> int:
    from agent.app.daemon import run_daemon

    return run_daemon(args.run_config or args.config or default_config_path())
