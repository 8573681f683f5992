"""Discovery end to end against the simulated camera cluster, inside a private namespace.

One cluster (12 cameras: one per quirk, +120 s clock skew, a wrong password, and cameras the tests move, reboot
or silence) is shared by the module because starting it costs seconds; tests that change a camera each use
their own camera and run after the read-only ones.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.discovery.inventory import Inventory
from agent.discovery.manager import DiscoveryManager
from agent.discovery.policy import AuthBudget
from agent.discovery.results import FailureReason, Interrogation, Via, WsdEvent, WsdEventKind
from agent.discovery.service import DiscoveryReport, discover_once
from agent.discovery.settings import Credential, DiscoverySettings
from agent.discovery.wsd import HelloListener, Interface
from agent.simulator.netns import AGENT_IF, AGENT_IP, Lan, netns_unavailable_reason
from agent.simulator.scenario import parse_scenario
from tests.discovery.conftest import NsLoop

pytestmark = [pytest.mark.netns, pytest.mark.rtsp]

LAN0 = Interface(AGENT_IF, AGENT_IP)
QUIRKY = {
    "q-wrong-host": "wrong_host",
    "q-no-wrapper": "no_probe_matches_wrapper",
    "cong-lang": "unescaped_scope_space",
    "q-dup": "duplicate_probe_match",
    "q-no-hello": "no_hello",
    "q-no-pullpoint": "no_pullpoint",
    "q-h265": "h265_main",
}
SCENARIO = {
    "cameras": [
        {"name": "cam-skew", "clock_skew_s": 120},
        *({"name": name, "quirks": [quirk]} for name, quirk in QUIRKY.items()),
        {"name": "wrong-pass", "password": "not-what-the-agent-has"},
        {"name": "mover"},
        {"name": "rebooter"},
        {"name": "silent"},
    ]
}
NORMAL = ["cam-skew", *QUIRKY]


@dataclass
class Sim:
    lan: Lan
    cluster: object
    loop: NsLoop
    creds: tuple[Credential, ...]

    def settings(self, **kw: object) -> DiscoverySettings:
        base: dict[str, object] = {"probe_window_s": 1.5, "credentials": self.creds, "call_timeout_s": 5.0}
        return DiscoverySettings(**{**base, **kw})  # type: ignore[arg-type]

    def discover(self, **kw: object) -> DiscoveryReport:
        inventory = kw.pop("inventory", None)
        budget = kw.pop("budget", None)
        return self.loop.run(discover_once(self.settings(**kw), inventory=inventory, budget=budget,  # type: ignore[arg-type]
                                           interfaces=[LAN0]), timeout=120)


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    from agent.simulator.cluster import Cluster
    from agent.simulator.rtsp import rtsp_unavailable_reason

    reason = rtsp_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with Lan() as lan:
        cluster = Cluster(parse_scenario(SCENARIO), lan=lan).start()
        loop = NsLoop(lan, lan.agent_ns)
        try:
            info = cluster.info("cam-skew")
            yield Sim(lan, cluster, loop, (Credential(info.username, info.password),))
        finally:
            loop.close()
            cluster.close()


def _by_name(report: DiscoveryReport) -> dict[str, Interrogation]:
    return {(r.discovered.name if r.discovered else None) or r.info.camera_id: r for r in report.rows}


def test_sim_every_camera_and_quirk_found_and_interrogated(sim: Sim) -> None:
    """Each quirky camera and the skewed one is found by multicast and fully interrogated."""
    report = sim.discover()
    rows = {r.info.endpoint_uuid: r for r in report.rows}
    for name in NORMAL:
        info = sim.cluster.info(name)  # type: ignore[attr-defined]
        row = rows[info.endpoint.removeprefix("urn:uuid:")]
        assert row.ok, (name, row.reason, row.detail)
        assert row.info.ip == info.ip and row.discovered is not None and row.discovered.via is Via.MULTICAST
        assert row.info.xaddr == info.xaddr  # 127.0.0.1 advertised by wrong_host is not trusted
        assert row.info.stream_uri == info.sub_uri  # stream host rewritten for wrong_host
        assert (row.info.stream_width, row.info.stream_height, row.info.stream_encoding) == (640, 360, "H264")
        assert row.info.snapshot_uri == info.snapshot_uri
        assert row.info.auth == "ok" and row.info.serial and row.info.manufacturer
        assert row.info.events_supported is (name != "q-no-pullpoint")
        assert not sim.cluster.camera(name)._subs, f"{name}: PullPoint subscription leaked"  # type: ignore[attr-defined]
    names = {r.info.endpoint_uuid: r.info.name for r in report.rows}
    cong = sim.cluster.info("cong-lang").endpoint.removeprefix("urn:uuid:")  # type: ignore[attr-defined]
    assert names[cong] == "cong lang"  # unescaped space inside the scope, glued back
    assert rows[cong].info.camera_id == "cong-lang"
    assert report.probe_stats.duplicates >= 1  # q-dup answered twice, kept once
    assert len({r.info.camera_id for r in report.rows}) == len(report.rows)


def test_sim_clock_skew_120s_interrogated(sim: Sim) -> None:
    """A camera 120 s ahead is interrogated with digest auth, and the skew is measured."""
    report = sim.discover(unicast_targets=(sim.cluster.info("cam-skew").ip,))  # type: ignore[attr-defined]
    row = next(r for r in report.rows if r.info.camera_id == "cam-skew")
    assert row.ok and row.clock_skew_s is not None and 115 <= row.clock_skew_s <= 125


def test_sim_wrong_password_auth_failed_after_3_attempts(sim: Sim) -> None:
    """Four wrong credential sets: 'auth failed' after exactly 3 tries on the wire, then none for 10 minutes."""
    cam = sim.cluster.camera("wrong-pass")  # type: ignore[attr-defined]
    info = sim.cluster.info("wrong-pass")  # type: ignore[attr-defined]
    creds = tuple(Credential("admin", f"guess-{n}") for n in range(4))
    budget = AuthBudget()
    before = cam.requests
    first = sim.discover(unicast_targets=(info.ip,), credentials=creds, budget=budget)
    row = next(r for r in first.rows if r.info.ip == info.ip)
    assert not row.ok and row.reason is FailureReason.AUTH_FAILED and row.info.auth == "failed"
    assert row.auth_attempts == 3
    assert cam.requests - before == 4  # 1 unauthenticated GetSystemDateAndTime + 3 GetDeviceInformation
    again = sim.discover(unicast_targets=(info.ip,), credentials=creds, budget=budget)
    row2 = next(r for r in again.rows if r.info.ip == info.ip)
    assert row2.reason is FailureReason.AUTH_FAILED and row2.auth_attempts == 0
    assert "retry in" in row2.detail


def test_sim_wsdiscovery_publisher_found_alongside(sim: Sim) -> None:
    """A PyPI wsdiscovery publisher in the camera namespace is found in the same round as the cameras."""
    from tests.discovery.test_wsd import PEER_UUID, _start_publisher

    pub = sim.lan.call(sim.lan.camera_ns, _start_publisher, sim.lan.add_camera_ip())
    try:
        report = sim.discover(check_events=False)
    finally:
        pub.stop()
    peer = [r for r in report.rows if r.discovered and r.discovered.endpoint_address == PEER_UUID]
    assert len(peer) == 1 and peer[0].reason is FailureReason.NO_ONVIF_ANSWER  # a peer, not a camera
    assert sum(1 for r in report.rows if r.ok) >= len(NORMAL)


def test_sim_ip_change_keeps_id(sim: Sim, tmp_path: Path) -> None:
    """A camera that gets a new DHCP address keeps its id in the inventory; the change is reported."""
    inventory = Inventory.load(tmp_path / "inventory.json")
    old = sim.cluster.info("mover")  # type: ignore[attr-defined]
    first = sim.discover(unicast_targets=(old.ip,), inventory=inventory, check_events=False)
    before = next(r for r in first.rows if r.info.ip == old.ip).info.camera_id
    new = sim.cluster.inject("mover", "new_ip")  # type: ignore[attr-defined]
    assert new.ip != old.ip
    second = sim.discover(inventory=Inventory.load(tmp_path / "inventory.json"), check_events=False)
    row = next(r for r in second.rows if r.info.ip == new.ip)
    assert row.ok and row.info.camera_id == before == "mover"
    assert any(c.camera_id == "mover" and (c.old_ip, c.new_ip) == (old.ip, new.ip) for c in second.ip_changes)
    entry = Inventory.load(tmp_path / "inventory.json").get("mover")
    assert entry is not None and [s.ip for s in entry.ip_history][-2:] == [old.ip, new.ip]


def test_sim_hello_bye_and_reinterrogation_after_reboot(sim: Sim) -> None:
    """A reboot gives Bye then Hello; the manager re-interrogates at once, with the clock reset to 1970."""
    uuid = sim.cluster.info("rebooter").endpoint.removeprefix("urn:uuid:")  # type: ignore[attr-defined]
    byes: list[str] = []
    hello_done = threading.Event()
    results: list[Interrogation] = []
    stop_box: dict[str, asyncio.Event] = {}
    ready = threading.Event()

    def on_interrogation(r: Interrogation) -> None:
        if r.info.endpoint_uuid == uuid:
            results.append(r)
            hello_done.set()

    def on_bye(camera_id: str, ev: WsdEvent) -> None:
        byes.append(camera_id)

    async def run_manager() -> None:
        stop_box["stop"] = asyncio.Event()
        inv = Inventory()
        mgr = DiscoveryManager(sim.settings(interfaces=(AGENT_IF,), check_events=False), inv,
                               on_report=lambda _r: ready.set(), on_interrogation=on_interrogation,
                               on_bye=on_bye, interval_s=3600)
        await mgr.run(stop_box["stop"])

    fut = asyncio.run_coroutine_threadsafe(run_manager(), sim.loop.loop)
    try:
        assert ready.wait(60), "first discovery round did not finish"
        sim.cluster.inject("rebooter", "reboot", down_s=0.5)  # type: ignore[attr-defined]
        assert hello_done.wait(30), "no re-interrogation after the Hello"
    finally:
        sim.loop.loop.call_soon_threadsafe(stop_box["stop"].set)
        fut.result(30)
    assert byes == ["rebooter"]
    row = results[-1]
    assert row.ok and row.info.camera_id == "rebooter"
    assert row.clock_skew_s is not None and row.clock_skew_s < -1e9  # camera clock restarted at 1970


def test_sim_hello_listener_hears_cameras(sim: Sim) -> None:
    """The bare listener hears a simulated camera's Bye and Hello across a reboot."""
    events: list[WsdEvent] = []
    both = threading.Event()

    def on_event(ev: WsdEvent) -> None:
        events.append(ev)
        if {e.kind for e in events} == {WsdEventKind.HELLO, WsdEventKind.BYE}:
            both.set()

    async def start() -> HelloListener:
        listener = HelloListener(on_event, [LAN0])
        await listener.start()
        return listener

    listener = sim.loop.run(start())
    try:
        sim.cluster.inject("rebooter", "reboot", down_s=0.2)  # type: ignore[attr-defined]
        assert both.wait(30)
    finally:
        sim.loop.loop.call_soon_threadsafe(listener.close)
    ip = sim.cluster.wait_up("rebooter").ip  # type: ignore[attr-defined]
    assert [e.kind for e in events][:2] == [WsdEventKind.BYE, WsdEventKind.HELLO]
    assert all(e.source_ip == ip for e in events)


def _wsd_rule(ip: str) -> list[str]:
    return ["from", ip, "ipproto", "udp", "sport", "3702", "table", "100"]


def _silence_wsd(lan: Lan, ip: str) -> None:
    """Blackhole every WS-Discovery datagram the camera at `ip` sends, as a multicast-hostile router would.

    Policy routing in the camera namespace: UDP from ip:3702 is routed by table 100, which only holds a
    blackhole. Its ONVIF (TCP 80) and RTSP traffic is untouched. (tc actions are not available on this kernel.)
    """
    blackhole = ["ip", "route", "replace", "blackhole", "default", "table", "100"]
    for cmd in (blackhole, ["ip", "rule", "add", *_wsd_rule(ip)]):
        proc = lan.run(lan.camera_ns, cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"policy routing unavailable here: {proc.stderr.strip()}")


def test_sim_subnet_fallback_finds_silent_camera(sim: Sim) -> None:
    """A camera whose WS-Discovery never reaches us is missed by the probe and found by the /24 scan."""
    info = sim.cluster.info("silent")  # type: ignore[attr-defined]
    _silence_wsd(sim.lan, info.ip)
    try:
        probed = sim.discover(check_events=False)
        assert info.ip not in {r.info.ip for r in probed.rows}
        report = sim.discover(scan_subnets=("198.18.0.0/24",), scan_rate_per_s=2000.0, scan_concurrency=256,
                              scan_connect_timeout_s=0.3, check_events=False)
    finally:
        sim.lan.run(sim.lan.camera_ns, ["ip", "rule", "del", *_wsd_rule(info.ip)], capture_output=True)
    row = next(r for r in report.rows if r.info.ip == info.ip)
    assert row.discovered is not None and row.discovered.via is Via.SCAN
    assert row.ok and row.info.serial == f"SIM{int(info.endpoint.rsplit(':', 1)[1].replace('-', ''), 16) % 10**9:09d}"
    assert set(row.discovered.open_ports) >= {80, 554}
    hit = next(h for h in report.scan_hits if h.ip == info.ip)
    assert hit.xaddr == info.xaddr.replace(":80/", "/")


def test_sim_no_subprocess_leak(sim: Sim) -> None:
    """The cluster's RTSP host is the only process the simulator started (sanity for the shared fixture)."""
    pids = sim.cluster.pids()  # type: ignore[attr-defined]
    assert len(pids) == 1
    assert subprocess.run(["kill", "-0", str(pids[0])]).returncode == 0
