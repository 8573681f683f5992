"""Fixtures shared by every test package. Fixtures for a real broker and network namespaces live in tests/rig/."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

pytest_plugins = ["tests.rig.fixtures"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real clips in ../shared/data (never committed into the project)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared clips not found at {SHARED_DATA}")
    return SHARED_DATA
