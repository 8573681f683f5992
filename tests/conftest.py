"""Fixtures shared by every test package.

The rig's fixtures live in tests/rig/: a real Mosquitto broker (broker.py) and private network namespaces
(netns.py). They are plugins so that each rig module stays small and owned by one concern.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

pytest_plugins = ["tests.rig.broker", "tests.rig.netns"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real clips in ../shared/data (never committed into the project)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared clips not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _drop_agent_log_handlers() -> Iterator[None]:
    """A test that runs the CLI in-process installs the agent's stderr handler on pytest's captured stream of
    that test; remove it afterwards, or later threads log into a closed file."""
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_matthan", False):
            root.removeHandler(handler)
