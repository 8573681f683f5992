"""Every camera fault the simulator can inject, as the station sees it on the retained `cameras/<id>/status`.

The health issue's "done when": each fault (refused, stalled, frozen, gone, reboot, IP change, password changed)
leads to the right retained state and reason within 15 s of its start, and the camera is back `online` within
10 s of its recovery. One village of eight cameras — one per fault and a control camera nobody touches — and one
`matthan-agent run`; the seven faults start together. The tests share the site and run in file order.

Times are the station's receive times of the status messages (wall clock, this machine) against the wall clock of
each injection or recovery. The station subscribes with Retain As Published, so each record also says that the
agent published it retained; a fresh subscription (`Site.retained`) checks what the broker holds for a newcomer.
Run with -s to see each camera's statuses and the measured times.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.health.status import StatusThresholds
from tests.e2e.rig import Message, Site, running_site

pytestmark = [pytest.mark.e2e, pytest.mark.netns, pytest.mark.rtsp, pytest.mark.slow]

FAULT_WITHIN_S = 15.0  # the issue: the right status within 15 s of the fault
RECOVER_WITHIN_S = 10.0  # the issue: online within 10 s of the recovery
TICK_S = 1.0  # the health thread publishes status changes once a second (agent.health.service.TICK_S)
THRESHOLDS = StatusThresholds()
REBOOT_DOWN_S = 10.0  # the rebooting camera is down this long (real ones take 20-60 s; the budget is the same)
RESET_DOWN_S = 2.0  # the factory reset that changed the password reboots the camera too
NEW_PASSWORD = "dat-lai-7"  # what the villager's reset left on the camera
# The moved camera's new DHCP lease: an address no camera ever had. The simulator's default is the lowest free
# one, which would be the address the `gone` camera just lost, and the gone camera's stream would reconnect to it.
NEW_IP = "198.18.0.61"
CONTROL = "control"
# `gone` drops the session, then removes the camera's address: stalled, then the SYN to an address nobody owns
# times out or ARP fails (see test_site.py). Nothing listens there, so nothing refuses.
GONE_REASONS = ("stream_stalled", "rtsp_timeout", "unreachable")
# A reboot drops the session (stalled), then finds nothing listening while the camera boots (refused).
REBOOT_REASONS = ("stream_stalled", "rtsp_refused")
# A move drops the session; the old address then refuses (until it is removed), times out or is unreachable.
MOVE_REASONS = ("stream_stalled", "rtsp_refused", "rtsp_timeout", "unreachable")

SCENARIO = {
    "defaults": {"fps": 15, "keyframe_s": 2, "sub": [640, 360], "main": [960, 540]},
    "scenes": {"street": {"loop_s": 20, "seed": 3, "actors": [
        {"name": "walker", "kind": "person", "start_s": 3, "duration_s": 7, "y": 0.8}]}},
    "cameras": [{"name": n, "scene": "street"} for n in
                (CONTROL, "refused", "stalled", "frozen", "gone", "reboot", "moved", "password")],
}
CAMERAS = [c["name"] for c in SCENARIO["cameras"]]


def offline(*reasons: str) -> Callable[[dict[str, Any]], bool]:
    return lambda s: s["state"] == "offline" and s["reason"] in reasons


def is_online(s: dict[str, Any]) -> bool:
    return s["state"] == "online"


@dataclass
class Case:
    """One faulted camera: the status that proves the agent saw the fault, and when things happened (wall clock)."""

    camera: str
    expect: Callable[[dict[str, Any]], bool]
    injected: float = 0.0
    seen: Message | None = None  # the first status after `injected` that `expect` accepts
    recovered: float | None = None  # healthy again: cleared, booted, answering at its new address, password fixed
    online: Message | None = None  # the first `online` after `recovered`

    def took(self) -> float | None:
        return None if self.seen is None else self.seen.t - self.injected

    def back(self) -> float | None:
        return None if self.online is None or self.recovered is None else self.online.t - self.recovered


CASES = {
    "refused": Case("refused", offline("rtsp_refused")),
    "stalled": Case("stalled", offline("stream_stalled", "rtsp_timeout")),
    # docs/mqtt.md: frozen_image is degraded (the picture stopped changing) and offline frozen_offline_s later.
    "frozen": Case("frozen", lambda s: s["state"] in ("degraded", "offline") and s["reason"] == "frozen_image"),
    "gone": Case("gone", offline(*GONE_REASONS)),
    "reboot": Case("reboot", offline(*REBOOT_REASONS)),
    "moved": Case("moved", offline(*MOVE_REASONS)),
    "password": Case("password", offline("auth_failed")),
}
# When each state fault is cleared: once the station has seen the status that proves it; `gone` only once
# reconnecting to its vanished address has failed (rtsp_timeout or unreachable), so that its recovery includes
# finding the address again. The 10 s recovery budget holds while the stream's reconnect backoff (a quarter of the
# outage so far, +-20 %, agent.video.backoff) stays short: outages up to about 12 s. Cleared ~17 s after the
# fault, the refusing camera was back online 5.8-9.0 s after it healed in 8 runs and over 10 s in a 9th: the
# backoff alone can take 0.3 x 17 = 5 s of the budget.
CLEAR_WHEN: dict[str, tuple[str, Callable[[dict[str, Any]], bool]]] = {
    "refused": ("rtsp_refuse", offline("rtsp_refused")),
    "stalled": ("rtsp_stall", offline("stream_stalled", "rtsp_timeout")),
    "frozen": ("freeze", offline("frozen_image")),
    "gone": ("gone", offline("rtsp_timeout", "unreachable")),
}
RUN: dict[str, Any] = {}


@pytest.fixture(scope="module")
def village(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Eight cameras in one namespace; broker, station and `matthan-agent run` in the other; all stopped at the end."""
    with running_site(
        Path(tmp_path_factory.mktemp("faults")), SCENARIO, retain_as_published=True,
        # Rounds at the default interval (5 min): a moved or rebooted camera must be found again through its
        # WS-Discovery Hello, not by a round that happens to fall inside the 10 s budget.
        discovery={"interfaces": ["lan0"], "interval_s": 300, "probe_timeout_s": 2,
                   "credentials": [{"username": "admin", "password": "matthan123"}]},
        # One camera per worker: restarting the worker of the moved or the reset camera (a new stream address, a
        # new password) must not restart the control camera's stream with it.
        workers={"count": len(CAMERAS)},
    ) as s:
        yield s


def first(site: Site, camera: str, since: float, pred: Callable[[dict[str, Any]], bool]) -> Message | None:
    return next((m for m in site.status_history(camera, since) if pred(m.json)), None)


def story(site: Site, camera: str, t0: float) -> list[tuple[float, str, str, bool]]:
    """What the station saw of one camera since shortly before `t0`: (s after t0, state, reason, retained)."""
    return [(round(m.t - t0, 1), m.json["state"], m.json["reason"], m.retain)
            for m in site.status_history(camera, t0 - 5)]


def print_story(site: Site) -> None:
    """Each faulted camera's statuses since its fault, and the measured times (shown with -s)."""
    for c in CASES.values():
        took, back = c.took(), c.back()
        print(f"{c.camera:9s} fault->status {'-' if took is None else f'{took:4.1f}'} s, recovery->online "
              f"{'-' if back is None else f'{back:4.1f}'} s: {story(site, c.camera, c.injected)}")


def poll(site: Site, done: Callable[[], bool], timeout: float, what: str, every: Callable[[], None]) -> None:
    """Call `every`, then check `done`, a few times a second until `done` holds or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        every()
        if done():
            return
        if site.agent is not None and site.agent.poll() is not None:
            raise AssertionError(f"the agent exited while waiting for {what}:\n{site.log_tail()}")
        time.sleep(0.2)  # polling the station's file and the simulator, bounded by the deadline
    every()


def watch_recoveries(site: Site, cases: list[Case]) -> Callable[[], None]:
    """A poll step: note when the rebooting camera is up again, and each case's first `online` after recovery."""
    def step() -> None:
        reboot = CASES["reboot"]
        if reboot.recovered is None and reboot.injected and not site.cluster.camera("reboot").down:
            reboot.recovered = time.time()
        for case in cases:
            if case.recovered is not None and case.online is None:
                case.online = first(site, case.camera, case.recovered, is_online)
    return step


def faulted(site: Site, case: Case, until: float | None = None) -> list[dict[str, Any]]:
    """The statuses other than `online` the station received for a case's camera from its fault until `until`."""
    return [m.json for m in site.status_history(case.camera, case.injected)
            if (until is None or m.t <= until) and not is_online(m.json)]


def test_faults_village_online(village: Site) -> None:
    """Every camera of the village is discovered and reported online before any fault."""
    village.wait_for(lambda: all(village.latest_status().get(c, {}).get("state") == "online" for c in CAMERAS),
                     120, "every camera online")
    RUN["baseline"] = time.time()
    RUN["old_ip"] = village.cluster.info("moved").ip


def test_faults_each_fault_reaches_its_status_within_15_s(village: Site) -> None:
    """Seven faults at once: each camera's retained status shows the right state and reason within 15 s."""
    assert "baseline" in RUN, "the village never came online"
    cluster = village.cluster
    faults: dict[str, Callable[[], Any]] = {
        "refused": lambda: cluster.inject("refused", "rtsp_refuse"),
        "stalled": lambda: cluster.inject("stalled", "rtsp_stall"),
        "frozen": lambda: cluster.inject("frozen", "freeze"),
        "gone": lambda: cluster.inject("gone", "gone"),
        "reboot": lambda: cluster.inject("reboot", "reboot", down_s=REBOOT_DOWN_S),
        "moved": lambda: cluster.inject("moved", "new_ip", ip=NEW_IP),
        # A factory reset: a new password, and the reboot that ends the running session. A password change alone
        # keeps the session (as on real cameras): nothing logs in again, so nothing could notice it.
        "password": lambda: (cluster.inject("password", "password_change", password=NEW_PASSWORD),
                             cluster.inject("password", "reboot", down_s=RESET_DOWN_S)),
    }
    for name, inject in faults.items():
        CASES[name].injected = time.time()
        inject()
    moved = CASES["moved"]
    moved.recovered = time.time()  # inject() returned: the camera answers at its new address
    RUN["new_ip"] = cluster.info("moved").ip
    assert RUN["new_ip"] == NEW_IP != RUN["old_ip"]
    recoveries = watch_recoveries(village, list(CASES.values()))

    def step() -> None:
        for case in CASES.values():
            if case.seen is None:
                case.seen = first(village, case.camera, case.injected, case.expect)
        for name, (fault, proved) in CLEAR_WHEN.items():
            case = CASES[name]
            if case.recovered is None and first(village, name, case.injected, proved) is not None:
                cluster.clear(name, fault)
                case.recovered = time.time()  # clear() returned: the camera serves normally again
        recoveries()

    last = max(c.injected for c in CASES.values())
    poll(village, lambda: all(c.seen for c in CASES.values()) and all(CASES[n].recovered for n in CLEAR_WHEN),
         last - time.time() + FAULT_WITHIN_S + 10, "every fault's status", step)
    print_story(village)
    for case in CASES.values():
        assert case.seen is not None, (case.camera, story(village, case.camera, case.injected))
        assert case.seen.retain, f"{case.camera}: its status was not published retained"
        assert case.took() <= FAULT_WITHIN_S, (case.camera, case.took(), story(village, case.camera, case.injected))
    missing = [n for n in CLEAR_WHEN if CASES[n].recovered is None]
    assert not missing, [(n, story(village, n, CASES[n].injected)) for n in missing]
    reboot = CASES["reboot"]
    assert reboot.recovered is None or reboot.seen.t < reboot.recovered, "reboot: offline only once back up"
    held = village.retained("cameras/password/status", count=1)  # the one camera still faulted
    assert CASES["password"].expect(held["cameras/password/status"].json), held["cameras/password/status"].json


def test_faults_reasons_while_faulted_are_precise(village: Site) -> None:
    """While faulted, each camera only ever shows the reasons its fault explains, in the order the code gives them."""
    assert all(c.seen for c in CASES.values()), "a fault was never seen"

    def during(name: str) -> list[dict[str, Any]]:
        return faulted(village, CASES[name], until=CASES[name].recovered)

    refused = during("refused")
    assert [s["reason"] for s in refused] == ["stream_stalled", "rtsp_refused"], refused  # dropped, then refused
    # Never frozen_image: a straggler packet after the stall must not pass for "the same picture keeps coming".
    stalled = during("stalled")
    assert stalled[0]["reason"] == "stream_stalled" and all(offline("stream_stalled", "rtsp_timeout")(s)
                                                            for s in stalled), stalled
    frozen = [m for m in village.status_history("frozen", CASES["frozen"].injected)
              if not is_online(m.json) and m.t <= (CASES["frozen"].recovered or time.time())]
    assert [(m.json["state"], m.json["reason"]) for m in frozen] == [("degraded", "frozen_image"),
                                                                    ("offline", "frozen_image")], frozen
    assert frozen[1].t - frozen[0].t <= THRESHOLDS.frozen_offline_s + TICK_S + 0.5, "degraded -> offline too slow"
    gone = during("gone")
    assert gone[0]["reason"] == "stream_stalled" and all(offline(*GONE_REASONS)(s) for s in gone), gone
    reboot = during("reboot")
    assert reboot and all(offline(*REBOOT_REASONS)(s) for s in reboot), reboot
    moved = faulted(village, CASES["moved"])
    assert moved and all(offline(*MOVE_REASONS)(s) for s in moved), moved
    reset = faulted(village, CASES["password"])
    assert all(offline("stream_stalled", "rtsp_refused", "auth_failed")(s) for s in reset), reset
    assert reset[-1]["reason"] == "auth_failed", reset


def test_faults_recovered_cameras_online_within_10_s(village: Site) -> None:
    """Cleared, rebooted and moved cameras are back online within 10 s of being healthy again."""
    # The moved camera's budget counts from the moment it answered at its new address (inject() returning). No
    # discovery round falls in it (interval_s 300): its Hello is interrogated at once (~0.1 s), the next supervisor
    # tick (<= 1 s) restarts its worker with the new stream address, then come the new session's first keyframe
    # (<= 2 s), the status machine's recovery dwell (3 s) and its tick (<= 1 s). A camera that sends no Hello waits
    # for the next round (discovery.interval_s) instead.
    cases = [CASES[n] for n in ("refused", "stalled", "frozen", "gone", "reboot", "moved")]
    assert all(c.seen for c in cases), "a fault was never seen; nothing to recover from"
    poll(village, lambda: all(c.online for c in cases), REBOOT_DOWN_S + RECOVER_WITHIN_S + 15,
         "every recovered camera online again", watch_recoveries(village, cases))
    print_story(village)
    for case in cases:
        assert case.online is not None, (case.camera, story(village, case.camera, case.injected))
        assert case.online.retain, f"{case.camera}: online was not published retained"
        assert case.back() <= RECOVER_WITHIN_S, (case.camera, case.back(),
                                                 story(village, case.camera, case.injected))


def test_faults_reset_camera_stays_auth_failed_until_its_password_is_fixed(village: Site) -> None:
    """The reset camera stays offline/auth_failed until its new password is configured and reloaded; online < 10 s."""
    case = CASES["password"]
    assert case.seen is not None
    # Longer than a silent camera takes to be called stalled (report silence, then the reason dwell).
    hold_until = case.seen.t + THRESHOLDS.report_silence_s + THRESHOLDS.reason_dwell_s + 2 * TICK_S
    village.wait_for(lambda: time.time() >= hold_until, hold_until - time.time() + 5, "the hold period")
    after = village.status_history("password", case.seen.t + 0.001)
    assert after == [], [m.json for m in after]
    held = village.retained("cameras/password/status", count=1)
    assert offline("auth_failed")(held["cameras/password/status"].json)

    info = village.cluster.info("password")
    cfg = dict(village.config)
    cfg["cameras"] = [{"name": "password", "uuid": info.endpoint,
                       "credentials": {"username": info.username, "password": NEW_PASSWORD}}]
    village.config = cfg
    village.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    village.config_path.chmod(0o600)
    village.agent.send_signal(signal.SIGHUP)
    case.recovered = time.time()
    poll(village, lambda: case.online is not None, RECOVER_WITHIN_S + 15, "the reset camera online",
         watch_recoveries(village, [case]))
    print_story(village)
    assert case.online is not None, story(village, "password", case.injected)
    assert case.back() <= RECOVER_WITHIN_S, (case.back(), story(village, "password", case.injected))


def test_faults_fixed_password_survives_the_cameras_next_reboot(village: Site) -> None:
    """The fixed password holds at the camera's next reboot (Hello): never auth_failed, online within 10 s of up."""
    assert CASES["password"].online is not None, "the password was never fixed"
    cluster = village.cluster
    t0 = time.time()
    cluster.inject("password", "reboot", down_s=RESET_DOWN_S)
    cluster.wait_up("password", timeout=RESET_DOWN_S + 10)
    up = time.time()
    back = village.wait_for(lambda: first(village, "password", up, is_online), RECOVER_WITHIN_S + 10,
                            "the rebooted camera online")
    seen = [(round(m.t - t0, 1), m.json["state"], m.json["reason"]) for m in village.status_history("password", t0)]
    print("password reboot after the fix:", seen, f"online {back.t - up:.1f} s after up")
    assert any(state == "offline" for _t, state, _r in seen), seen
    assert all(reason != "auth_failed" for _t, _s, reason in seen), seen
    assert back.t - up <= RECOVER_WITHIN_S, seen


def test_faults_moved_camera_keeps_its_id_at_the_new_address(village: Site) -> None:
    """The camera that moved to a new IP runs at that IP under the same camera id; no second camera appears."""
    assert "new_ip" in RUN
    state = json.loads((village.state_dir / "agent-state.json").read_text())
    assert state["extra"]["cameras"]["moved"]["ip"] == RUN["new_ip"], state["extra"]["cameras"]["moved"]
    assert sorted(state["cameras"]) == sorted(CAMERAS)
    held = village.retained("cameras/+/status", count=len(CAMERAS) + 1, timeout=3.0)
    assert sorted(held) == sorted(f"cameras/{c}/status" for c in CAMERAS)
    assert all(m.json["state"] == "online" for m in held.values()), {t: m.json["state"] for t, m in held.items()}


def test_faults_control_camera_stays_online(village: Site) -> None:
    """The untouched control camera is online in every status the station received during all the faults."""
    since = RUN.get("baseline", 0.0)
    seen = [(round(m.t - since, 1), m.json["state"], m.json["reason"]) for m in village.status_history(CONTROL, since)]
    assert all(state == "online" for _t, state, _r in seen), seen
    held = village.retained(f"cameras/{CONTROL}/status", count=1)
    assert held[f"cameras/{CONTROL}/status"].json["state"] == "online"
