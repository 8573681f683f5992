"""The doctor on a private LAN of network namespaces with the simulator, where a camera's address can really go
away: a camera advertising 127.0.0.1 (a common firmware bug) is still checked at its real address, a camera that
disappeared gets the power/cable hint, and a camera whose IP changed gets the "run discover" hint.

The doctor runs as the technician runs it (`main(["doctor", ...])`) on a thread inside the agent's namespace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agent.simulator.netns import Lan, netns_unavailable_reason
from tests.cli_tools.test_doctor_simulator import camera_argv, doctor_json, first_failure
from tests.rig.sim import running_cluster

pytestmark = [pytest.mark.netns, pytest.mark.rtsp, pytest.mark.usefixtures("english_no_config")]


@pytest.fixture(scope="module")
def lan_cluster() -> Iterator[tuple[Lan, Any]]:
    """One private LAN and one cluster for the module (each test uses its own camera)."""
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    scenario = {"cameras": [{"name": "quirky", "quirks": ["wrong_host"]}, {"name": "mover"}, {"name": "vanish"}]}
    with Lan() as lan, running_cluster(scenario, lan=lan) as cluster:
        yield lan, cluster


def doctor_in_lan(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, lan: Lan, info: Any,
                  host: str | None = None) -> tuple[int, dict[str, dict[str, Any]]]:
    """`matthan-agent doctor --onvif HOST:PORT --json` from the agent's namespace; every failure has a hint."""
    monkeypatch.setenv("SIM_PW", info.password)
    rc, st, _ = doctor_json(capsys, camera_argv(info, host=host), call=lambda fn, *a: lan.call(lan.agent_ns, fn, *a))
    return rc, st


def test_doctor_netns_wrong_host_quirk(lan_cluster: tuple[Lan, Any], capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A camera advertising 127.0.0.1 in its stream URI: the doctor uses the address it reached, and passes."""
    lan, cluster = lan_cluster
    info = cluster.info("quirky")
    rc, st = doctor_in_lan(capsys, monkeypatch, lan, info)
    assert st["stream_uri"]["status"] == "pass" and info.ip in st["stream_uri"]["detail"]
    assert "127.0.0.1" not in st["stream_uri"]["detail"]
    assert st["rtsp"]["status"] == "pass" and st["frames"]["status"] == "pass", st["frames"]
    assert rc == 0, st


def test_doctor_netns_camera_gone(lan_cluster: tuple[Lan, Any], capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A camera that vanished from the LAN (unplugged, no power): "IP reachable" fails with the power/cable hint,
    every later step is skipped, and the run exits 1."""
    lan, cluster = lan_cluster
    info = cluster.inject("vanish", "gone")
    rc, st = doctor_in_lan(capsys, monkeypatch, lan, info)
    assert first_failure(st)["name"] == "reachable" and "power" in st["reachable"]["hint"]
    assert all(v["status"] == "skip" for k, v in st.items() if k != "reachable") and rc == 1


def test_doctor_netns_ip_changed(lan_cluster: tuple[Lan, Any], capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """After the camera moved to a new IP, checking the old address fails "IP reachable" with the discover hint
    and exit 1; the new address passes every step and exits 0."""
    lan, cluster = lan_cluster
    old = cluster.info("mover")
    new = cluster.inject("mover", "new_ip")
    assert new.ip != old.ip
    rc, stale = doctor_in_lan(capsys, monkeypatch, lan, new, host=old.ip)
    assert first_failure(stale)["name"] == "reachable" and "discover" in stale["reachable"]["hint"] and rc == 1
    rc, fresh = doctor_in_lan(capsys, monkeypatch, lan, new)
    assert {k: v["status"] for k, v in fresh.items()} == dict.fromkeys(fresh, "pass") and rc == 0, fresh
