"""The doctor on a private LAN of network namespaces with the simulator: a camera advertising 127.0.0.1 (a common
firmware bug) is still checked at its real address, and a camera whose IP changed gets the "run discover" hint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agent.cli.doctor import camera_checks
from agent.health.checks import CameraProbe
from tests.rig.sim import running_cluster

pytestmark = [pytest.mark.netns, pytest.mark.rtsp]


@pytest.fixture
def lan_cluster(lan: Any) -> Iterator[Any]:
    scenario = ({"cameras": [{"name": "quirky", "quirks": ["wrong_host"]},
                                                        {"name": "mover"}]})
    with running_cluster(scenario, lan=lan) as c:
        yield c


def run_doctor(lan: Any, info: Any, host: str | None = None) -> dict[str, Any]:
    cam = CameraProbe(name=info.name, host=host or info.ip, onvif_port=info.onvif_port, user=info.username,
                      password=info.password, timeout_s=3.0)
    results = lan.call(lan.agent_ns, camera_checks, cam, 2.0)  # sockets opened on a thread inside the agent ns
    return {"cam": cam, **{r.name: r for r in results}}


def test_doctor_netns_wrong_host_quirk(lan: Any, lan_cluster: Any) -> None:
    """A camera advertising 127.0.0.1 in its stream URI: the doctor uses the address it reached, and passes."""
    info = lan_cluster.info("quirky")
    out = run_doctor(lan, info)
    assert out["stream_uri"].status == "pass" and info.ip in (out["cam"].stream_uri or "")
    assert "127.0.0.1" not in (out["cam"].stream_uri or "")
    assert out["rtsp"].status == "pass" and out["frames"].status == "pass", out["frames"].text()


def test_doctor_netns_ip_changed(lan: Any, lan_cluster: Any) -> None:
    """After the camera moved to a new IP, checking the old address fails at the first step with the
    discover hint; the new address passes."""
    old = lan_cluster.info("mover")
    new = lan_cluster.inject("mover", "new_ip")
    assert new.ip != old.ip
    stale = run_doctor(lan, new, host=old.ip)
    assert stale["reachable"].status == "fail" and "discover" in stale["reachable"].text()[2]
    fresh = run_doctor(lan, new)
    assert fresh["reachable"].status == "pass" and fresh["credentials"].status == "pass"
