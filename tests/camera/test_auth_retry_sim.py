"""A wrong password on a simulated camera: the RTSP pipeline and the PullPoint loop log in at most 3 times per window.

The window is shortened to WINDOW_S (injected through `AuthRetryPolicy`) so the test need not wait 10 minutes.
Each loop must report `auth_failed` at once, make its first logins on the normal backoff, then hold the 4th until
the 1st has left the window, and never give up.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agent.camera import CameraPipeline, PipelineSettings
from agent.camera.auth_retry import AuthRetryPolicy
from agent.models import CameraReport, StatusReason
from agent.video import FrameSource, open_source
from tests.camera.reports import Collector
from tests.rig.sim import running_cluster

pytestmark = [pytest.mark.rtsp, pytest.mark.slow]

WINDOW_S = 8.0  # long enough that three logins on the normal backoff (~1 s apart) fit well inside it
REPORT_WITHIN_S = 15.0
WRONG = "not-the-password"
POLL_S = 0.01


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    scenario = {"cameras": [{"name": "rtsp-pw", "password": "right-one-1"},
                            {"name": "events-pw", "password": "right-one-2"}]}
    with running_cluster(scenario) as c:
        yield c


def _poll(predicate: Callable[[], bool], timeout: float) -> float | None:
    """The monotonic time at which `predicate` first held, polling until `timeout`; None if it never did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        threading.Event().wait(POLL_S)
    return None


def _healthy(r: CameraReport) -> bool:
    return r.connected and r.error is None


def test_auth_retry_sim_rtsp_wrong_password_three_logins_per_window(cluster: Any) -> None:
    """RTSP with a wrong password: auth_failed at once, 3 connection attempts, the 4th only a window after the 1st;
    a new pipeline with the right password (what a reload's restarted worker runs) connects at once."""
    info = cluster.info("rtsp-pw")
    uri = info.rtsp_uri().replace("rtsp://", f"rtsp://{info.username}:{WRONG}@", 1)
    settings = PipelineSettings("rtsp-pw", uri, report_interval_s=1.0)
    opens: list[float] = []
    fourth = threading.Event()

    def factory() -> FrameSource:  # a real RTSP source; we only note when each connection attempt starts
        opens.append(time.monotonic())
        if len(opens) == 4:
            fourth.set()
        return open_source(settings.uri, settings.source)

    reports: Collector[CameraReport] = Collector()
    policy = AuthRetryPolicy(window_s=WINDOW_S)
    pipeline = CameraPipeline(settings, on_event=lambda e: None, on_report=reports, source_factory=factory,
                              auth_policy=policy)
    stop = threading.Event()
    thread = threading.Thread(target=pipeline.run, args=(stop,), daemon=True)
    thread.start()
    try:
        bad = reports.wait_for(lambda r: r.error == StatusReason.AUTH_FAILED, REPORT_WITHIN_S)
        assert bad is not None, [(r.connected, r.error) for r in reports.values()[-5:]]
        assert "password" in bad.error_message and WRONG not in bad.error_message
        assert fourth.wait(WINDOW_S + 30), opens
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()
    assert opens[2] - opens[0] < WINDOW_S  # the first three on the normal backoff: the window did the holding
    assert opens[3] - opens[0] >= WINDOW_S, [round(t - opens[0], 2) for t in opens]

    right = PipelineSettings("rtsp-pw", info.rtsp_uri(with_credentials=True), report_interval_s=1.0)
    fresh: Collector[CameraReport] = Collector()
    restarted = CameraPipeline(right, on_event=lambda e: None, on_report=fresh)
    stop2 = threading.Event()
    thread2 = threading.Thread(target=restarted.run, args=(stop2,), daemon=True)
    thread2.start()
    try:
        assert fresh.wait_for(_healthy, 10), [(r.connected, r.error) for r in fresh.values()[-5:]]
    finally:
        stop2.set()
        thread2.join(15)


def test_auth_retry_sim_pullpoint_wrong_password_counted_on_the_wire(cluster: Any) -> None:
    """PullPoint with a wrong password: auth_failed; on the camera's request counter, three failed subscription
    attempts and then silence until the first has left the window; then it tries again."""
    from agent.camera.onvif_events import OnvifEventsSettings, OnvifMotionEvents

    info = cluster.info("events-pw")
    cam = cluster.camera("events-pw")
    policy = AuthRetryPolicy(window_s=WINDOW_S)
    reports: Collector[CameraReport] = Collector()
    settings = OnvifEventsSettings("events-pw", info.ip, info.onvif_port, info.username, WRONG)
    runner = OnvifMotionEvents(settings, on_event=lambda e: None, on_report=reports, auth_policy=policy)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    before = cam.requests

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.run(stop))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        t_fail1 = _poll(lambda: policy.failures(time.monotonic()) >= 1, REPORT_WITHIN_S)
        assert t_fail1 is not None
        per_attempt = cam.requests - before  # clock, services, the rejected CreatePullPointSubscription
        assert per_attempt >= 1
        t_fail3 = _poll(lambda: policy.failures(time.monotonic()) >= 3, WINDOW_S)
        assert t_fail3 is not None and t_fail3 - t_fail1 < WINDOW_S
        assert cam.requests - before == 3 * per_attempt  # three attempts on the wire, nothing else
        t_fourth = _poll(lambda: cam.requests - before > 3 * per_attempt, WINDOW_S + 30)
        assert t_fourth is not None, "the loop gave up instead of trying again after the window"
        assert t_fourth - t_fail1 >= WINDOW_S - 0.2, (t_fail1, t_fail3, t_fourth)  # 0.2 s: polling resolution
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
    assert not thread.is_alive()
    bad = [r for r in reports.values() if r.error == StatusReason.AUTH_FAILED]
    assert bad and "password" in bad[0].error_message and not bad[0].connected
