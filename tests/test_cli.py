"""The CLI skeleton: every subcommand exists, and one that has not landed says so and fails."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent import __version__
from agent.cli import SUBCOMMANDS, build_parser, main


def test_cli_version_matches_package() -> None:
    """`--version` prints the package version."""
    out = subprocess.run(
        [sys.executable, "-m", "agent", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in out.stdout


def test_cli_every_subcommand_has_help() -> None:
    """Each subcommand of the design card is registered and has a help text."""
    parser = build_parser()
    assert set(SUBCOMMANDS) >= {
        "run", "check-config", "discover", "replay", "status", "doctor", "snapshot", "simulate", "demo",
    }
    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([name, "--help"])
        assert exc.value.code == 0


def test_cli_no_command_is_usage_error() -> None:
    """Running with no subcommand prints help and exits 64 (EX_USAGE)."""
    assert main([]) == 64
