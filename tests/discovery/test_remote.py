"""Interrogation in the helper process (agent.discovery.remote) against simulated cameras on loopback: the same
answers as in-process, the same credential budget, an exit when idle, and recovery when the helper dies."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.discovery.inventory import Inventory
from agent.discovery.remote import InterrogationHelper
from agent.discovery.results import Discovered, FailureReason, Via
from agent.discovery.service import discover_once
from agent.discovery.settings import Credential, DiscoverySettings
from tests.rig.sim import running_cluster

pytestmark = pytest.mark.rtsp
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with running_cluster({"cameras": [{"name": "lo-good", "password": "right-pass-1"},
                                      {"name": "lo-wrong", "password": "other-pass-2"}]}) as c:
        yield c


def _settings(cluster: Any) -> DiscoverySettings:
    good = cluster.info("lo-good")
    return DiscoverySettings(
        multicast=False, probe_window_s=1.0, check_events=False, camera_timeout_s=6.0, call_timeout_s=3.0,
        unicast_targets=tuple(f"127.0.0.1:{cluster.info(n).wsd_port}" for n in ("lo-good", "lo-wrong")),
        credentials=(Credential(good.username, "right-pass-1"),))


def _summary(report: Any) -> list[tuple[Any, ...]]:
    return [(r.info.ip, r.info.xaddr, r.ok, r.reason, r.auth_attempts, r.credential_user, r.info.stream_uri,
             r.info.manufacturer, r.info.stream_width) for r in sorted(report.rows, key=lambda r: r.info.xaddr or "")]


async def _wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


def test_helper_answers_as_in_process_and_exits_when_idle(cluster: Any, tmp_path: Path) -> None:
    """A round through the helper gives the rows an in-process round gives; the helper then exits after idle_s,
    and the next round starts a new one."""
    settings = _settings(cluster)

    async def scenario() -> tuple[Any, Any, list[int]]:
        helper = InterrogationHelper(idle_s=0.5)
        try:
            remote = await discover_once(settings, inventory=Inventory(), interrogator=helper.interrogator)
            started = [helper.started]
            assert await _wait_for(lambda: not helper.running, 10.0), "the helper did not exit when idle"
            again = await discover_once(settings, inventory=Inventory(), interrogator=helper.interrogator)
            started.append(helper.started)
            assert _summary(again) == _summary(remote)
            return remote, again, started
        finally:
            await helper.close()

    remote, _, started = asyncio.run(scenario())
    local = asyncio.run(discover_once(settings, inventory=Inventory()))
    assert _summary(remote) == _summary(local)
    assert [r.ok for r in sorted(remote.rows, key=lambda r: r.info.xaddr or "")].count(True) == 1
    assert any(r.reason is FailureReason.AUTH_FAILED for r in remote.rows)
    assert started == [1, 2]


def test_helper_keeps_the_credential_budget_of_the_state_dir(cluster: Any, tmp_path: Path) -> None:
    """The camera that rejects every password gets 3 attempts through the helper, and then an in-process round
    with the same state dir makes none: the budget file is shared, not per process."""
    base = _settings(cluster)
    wrong = cluster.info("lo-wrong")
    settings = dataclasses.replace(base, unicast_targets=(f"127.0.0.1:{wrong.wsd_port}",),
                                   credentials=tuple(Credential(wrong.username, f"guess-{n}") for n in range(4)))
    cam = cluster.camera("lo-wrong")

    async def remote_round() -> Any:
        helper = InterrogationHelper()
        try:
            return await discover_once(settings, inventory=Inventory.load(tmp_path / "inventory.json"),
                                       interrogator=helper.interrogator)
        finally:
            await helper.close()

    before = cam.requests
    first = asyncio.run(remote_round())
    assert [r.reason for r in first.rows] == [FailureReason.AUTH_FAILED] and first.rows[0].auth_attempts == 3
    assert cam.requests - before == 4  # the unauthenticated clock request + 3 logins
    before = cam.requests
    second = asyncio.run(discover_once(settings, inventory=Inventory.load(tmp_path / "inventory.json")))
    assert second.rows[0].auth_attempts == 0 and "retry in" in second.rows[0].detail
    assert cam.requests - before == 1


def test_a_dead_helper_fails_its_request_and_the_next_one_starts_afresh(cluster: Any) -> None:
    """A request to a camera that never answers is in flight when the helper is killed: it comes back at once as a
    `timeout` row naming the helper, and the next request (a working camera) is served by a new helper."""
    settings = _settings(cluster)
    good = cluster.info("lo-good")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel's backlog) and never answers
    port = silent.getsockname()[1]
    hung = Discovered(ip="127.0.0.1", xaddr=f"http://127.0.0.1:{port}/onvif/device_service", via=Via.TARGET)
    ok = Discovered(ip="127.0.0.1", xaddr=good.xaddr, via=Via.TARGET)

    async def scenario() -> tuple[Any, Any, float, int]:
        helper = InterrogationHelper()
        one = helper.interrogator(settings, None)
        try:
            task = asyncio.create_task(one(hung))
            assert await _wait_for(lambda: helper.running, 30.0)
            await asyncio.sleep(0.5)  # the request is in the helper's hands
            pid = helper._proc.pid
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            dead = await asyncio.wait_for(task, 10.0)
            waited = time.monotonic() - killed
            fine = await one(ok)
            return dead, fine, waited, helper.started
        finally:
            await helper.close()

    try:
        dead, fine, waited, started = asyncio.run(scenario())
    finally:
        silent.close()
    assert not dead.ok and dead.reason is FailureReason.TIMEOUT and "helper" in dead.detail
    assert waited < settings.camera_timeout_s  # failed on the helper's death, not on a timeout
    assert fine.ok and fine.credential_user == good.username
    assert started == 2


def test_the_daemon_and_camera_workers_do_not_load_what_they_do_not_use() -> None:
    """Memory on a Pi (scripts/bench/agent.py): the daemon loads no SOAP stack (zeep, lxml, aiohttp: the helper
    does), and a camera worker no MQTT client and no asyncio (only workers with camera-side alarms need a loop)."""
    code = ("import sys, json; import agent.app.daemon, agent.discovery.manager, agent.discovery.remote; "
            "daemon = sorted(m for m in ('zeep', 'lxml', 'aiohttp', 'onvif') if m in sys.modules); "
            "print(json.dumps(daemon))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    code = ("import sys, json; import agent.app.worker; "
            "print(json.dumps(sorted(m for m in ('paho', 'asyncio', 'zeep', 'aiohttp') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_with_frequent_rounds_the_helper_stays_up(cluster: Any) -> None:
    """Rounds more often than every RESIDENT_BELOW_S keep the helper resident (no idle exit), since restarting it
    each round costs more CPU than its memory is worth; the shipped 300 s rounds let it exit."""
    from agent.discovery.remote import IDLE_S, RESIDENT_BELOW_S, idle_timeout_for

    assert idle_timeout_for(30.0) is None and idle_timeout_for(RESIDENT_BELOW_S - 1) is None
    assert idle_timeout_for(300.0) == IDLE_S
    settings = _settings(cluster)
    good = cluster.info("lo-good")

    async def scenario() -> tuple[bool, bool, int]:
        helper = InterrogationHelper(idle_s=idle_timeout_for(30.0))
        try:
            first = await helper.interrogator(settings, None)(Discovered(ip="127.0.0.1", xaddr=good.xaddr,
                                                                         via=Via.TARGET))
            # An idle exit would come at once with idle_s 0.5 (the first test); give it three times that.
            exited = await _wait_for(lambda: not helper.running, 1.5)
            return first.ok, exited, helper.started
        finally:
            await helper.close()

    ok, exited, started = asyncio.run(scenario())
    assert ok and not exited and started == 1
