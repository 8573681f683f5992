"""Shared body for subcommands whose capability has not landed yet: say so plainly, never pretend."""

from __future__ import annotations

import sys

EX_UNAVAILABLE = 69


def not_available(command: str, what: str) -> int:
    print(
        f"matthan-agent {command}: not available in this build yet ({what}). Nothing was done.",
        file=sys.stderr,
    )
    return EX_UNAVAILABLE
