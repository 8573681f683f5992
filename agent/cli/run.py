"""`matthan-agent run`: placeholder until the agent daemon lands."""

from __future__ import annotations

import argparse

from agent.cli._unavailable import not_available


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    return not_available("run", "the agent daemon")
