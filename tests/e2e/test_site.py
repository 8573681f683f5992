"""`matthan-agent run` against a simulated village: discovery, motion events, faults, outages, signals."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import SCENARIO
from tests.e2e.rig import Site

pytestmark = [pytest.mark.e2e, pytest.mark.netns, pytest.mark.rtsp, pytest.mark.slow]
CAMERAS = [c["name"] for c in SCENARIO["cameras"]]


def test_e2e_all_cameras_discovered_and_online(site: Site) -> None:
    """Every simulated camera is found by WS-Discovery, interrogated over ONVIF and reported online."""

    def all_online() -> bool:
        latest = site.latest_status()
        return all(latest.get(c, {}).get("state") == "online" for c in CAMERAS)

    site.wait_for(all_online, 90, "every camera online")
    statuses = [m for m in site.messages() if m.sub() == "status"]
    assert statuses and statuses[-1].json["state"] == "online"
