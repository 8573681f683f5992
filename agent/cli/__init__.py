"""The `matthan-agent` command line: one module per subcommand, imported only when that subcommand runs.

Lazy imports keep `--help` and `check-config` fast on a Pi, and keep a broken optional dependency (say, PyAV on an
odd board) from breaking subcommands that do not need it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from agent import __version__
from agent.logsetup import setup_logging

DEFAULT_CONFIG = "/etc/matthan-agent/agent.yaml"
EX_USAGE = 64
EX_UNAVAILABLE = 69
EX_CONFIG = 78

# name -> (module, one-line help). Order is the order shown in --help.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("agent.cli.run", "run the agent daemon (discovery, motion, MQTT)"),
    "check-config": ("agent.cli.check_config", "validate a configuration file and print every error"),
    "discover": ("agent.cli.discover", "find ONVIF cameras on the LAN and show what each one answered"),
    "replay": ("agent.cli.replay", "run motion detection over a video file, image sequence or RTSP URL"),
    "status": ("agent.cli.status", "show the running agent's camera statuses and health (no broker needed)"),
    "doctor": ("agent.cli.doctor", "check a camera and this host step by step and say what to fix"),
    "snapshot": ("agent.cli.snapshot", "save a JPEG from a camera"),
    "simulate": ("agent.cli.simulate", "start simulated ONVIF/RTSP cameras for tests and demos"),
    "demo": ("agent.cli.demo", "run the agent against a simulated cluster with a local broker"),
}


def default_config_path() -> str:
    return os.environ.get("MATTHAN_CONFIG") or DEFAULT_CONFIG


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="matthan-agent",
        description="Mắt Thần edge agent for village ONVIF camera clusters.",
    )
    parser.add_argument("--version", action="version", version=f"matthan-agent {__version__}")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("MATTHAN_LOG_LEVEL", "INFO"),
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="logging threshold (default INFO, or MATTHAN_LOG_LEVEL)",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help=f"configuration file (default {DEFAULT_CONFIG}, or MATTHAN_CONFIG)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_module=module_name)
        module = importlib.import_module(module_name)
        add_arguments = getattr(module, "add_arguments", None)
        if add_arguments is not None:
            add_arguments(sp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return EX_USAGE
    setup_logging(args.log_level)
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130
