"""Pytest fixtures for private network namespaces (see agent/simulator/netns.py for the layout).

Tests that send multicast must use `lan`: it is the only place WS-Discovery probes may go.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.simulator.netns import Lan, netns_unavailable_reason, remove_stale_namespaces


@pytest.fixture(scope="session", autouse=True)
def _clean_stale_namespaces() -> None:
    """A test run killed half-way leaves namespaces behind; remove those whose creator is gone."""
    if netns_unavailable_reason() is None:
        remove_stale_namespaces()


@pytest.fixture
def lan() -> Iterator[Lan]:
    """A fresh agent namespace and camera namespace joined by a veth pair; removed after the test."""
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with Lan() as net:
        yield net
