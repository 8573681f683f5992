"""Fixtures shared by every test package.

The rig's fixtures live in tests/rig/: a real Mosquitto broker (broker.py) and private network namespaces
(netns.py). They are plugins so that each rig module stays small and owned by one concern.
"""

from __future__ import annotations

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
