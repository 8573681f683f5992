"""The PullPoint subscription's life against simulated cameras: renewed, re-created when lost, watched for silence.

The real onvif-zeep-async client talks real SOAP to the simulator; the lifetime, renew interval and silence limit
are shortened through `OnvifEventsSettings` so that several lifetimes pass in seconds. Each test has its own
camera, because the controls (dropping subscriptions, stalling pulls) act on one camera's event service.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from agent.models import CameraReport, EventKind, MotionEvent, StatusReason
from agent.motion import TrackerSettings
from tests.camera.reports import Collector
from tests.rig.sim import running_cluster

T = TypeVar("T")

LIFETIME_S = 4.0
# Renew every second, pull for one, give up on a pull after 1 + 1.5 s: 1 + 2.5 < 4, as the settings require.
SHORT = {"subscription_s": LIFETIME_S, "renew_s": 1.0, "pull_timeout_s": 1.0, "silence_margin_s": 1.5}
SILENCE_S = SHORT["pull_timeout_s"] + SHORT["silence_margin_s"]
LOOP_S = 4.0  # the scene: someone crosses for 1.5 s every 4 s, so the camera's alarm toggles every few seconds
TRACKER = TrackerSettings(min_motion_s=0.5, event_gap_s=1.0)
CAMERAS = ("renew", "lost", "silent", "reboot")
SCENARIO = {"scenes": {"blink": {"loop_s": LOOP_S, "actors": [{"name": "p", "start_s": 1.0, "duration_s": 1.5}]}},
            "cameras": [{"name": name, "scene": "blink"} for name in CAMERAS]}
POLL_S = 0.02

pytestmark = [pytest.mark.rtsp, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with running_cluster(SCENARIO) as c:
        yield c


class Run:
    """One camera's `OnvifMotionEvents` loop on its own thread and asyncio loop, collecting events and reports."""

    def __init__(self, cluster: Any, name: str) -> None:
        from agent.camera.onvif_events import OnvifEventsSettings, OnvifMotionEvents

        info = cluster.info(name)
        self.settings = OnvifEventsSettings(name, info.ip, info.onvif_port, info.username, info.password,
                                            tracker=TRACKER, report_interval_s=60.0, **SHORT)
        self.events: Collector[MotionEvent] = Collector()
        self.reports: Collector[CameraReport] = Collector()
        self.runner = OnvifMotionEvents(self.settings, on_event=self.events, on_report=self.reports)
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self.runner.run(self._stop),),
                                        name=f"events-{name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the events loop did not stop"
        self._loop.close()


@contextlib.contextmanager
def running(cluster: Any, name: str) -> Iterator[Run]:
    run = Run(cluster, name)
    try:
        yield run
    finally:
        run.close()


def first(collector: Collector[T], predicate: Callable[[T], bool], timeout: float,
          after: float = 0.0) -> tuple[float, T] | None:
    """(monotonic receipt time, item) of the first item after `after` matching `predicate`, waiting up to `timeout`."""
    item = collector.wait_for(predicate, timeout, after=after)
    if item is None:
        return None
    return next((t, v) for t, v in collector.items if v is item)


def poll(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(POLL_S)
    return True


def healthy(r: CameraReport) -> bool:
    return r.connected and r.error is None


def failed(r: CameraReport) -> bool:
    return not r.connected and r.error == StatusReason.ONVIF_ERROR


def is_start(e: MotionEvent) -> bool:
    return e.kind == EventKind.START


def test_onvif_events_settings_refuse_renewal_after_lifetime() -> None:
    """A renew interval plus one silent pull that reaches past the lifetime is refused at construction."""
    from agent.camera.onvif_events import OnvifEventsSettings

    with pytest.raises(ValueError, match="renew_s"):
        OnvifEventsSettings("c", "127.0.0.1", 80, subscription_s=4.0, renew_s=2.0, pull_timeout_s=1.0,
                            silence_margin_s=1.5)
    with pytest.raises(ValueError, match="silence_margin_s"):
        OnvifEventsSettings("c", "127.0.0.1", 80, silence_margin_s=0)
    defaults = OnvifEventsSettings("c", "127.0.0.1", 80)
    assert (defaults.subscription_s, defaults.renew_s, defaults.silence_s) == (60.0, 30.0, 15.0)


def test_onvif_events_short_subscription_renewed_across_lifetimes(cluster: Any) -> None:
    """With a 4 s lifetime, Renews reach the camera every 1-2 s and the one subscription lives on: the alarm still
    becomes events after three lifetimes, with no second CreatePullPointSubscription and no re-subscription."""
    cam = cluster.camera("renew")
    creates, renews = cam.operations["CreatePullPointSubscription"], cam.operations["Renew"]
    with running(cluster, "renew") as run:
        up = first(run.reports, healthy, 15)
        assert up is not None, run.reports.values()
        late = first(run.events, is_start, 3 * LIFETIME_S + 2 * LOOP_S, after=up[0] + 3 * LIFETIME_S)
        assert late is not None, f"no event after three lifetimes: {run.runner.error}"
        wire_renews = cam.operations["Renew"] - renews
        elapsed = late[0] - up[0]
        assert cam.operations["CreatePullPointSubscription"] - creates == 1
        assert run.runner.resubscriptions == 0 and run.runner.error is None
    assert wire_renews >= elapsed / 2 - 1, (wire_renews, elapsed)  # one per renew_s + at most one pull
    assert run.runner.renewals >= wire_renews


def test_onvif_events_lost_subscription_recreated_with_backoff(cluster: Any) -> None:
    """When the camera forgets the subscription, the ResourceUnknown fault of the waiting pull is reported as
    onvif_error at once, the subscription is re-created after a backoff delay (>= 1 s - 20 % jitter, not in a
    tight loop), and the alarm becomes events again."""
    cam = cluster.camera("lost")
    with running(cluster, "lost") as run:
        assert first(run.reports, healthy, 15) is not None, run.reports.values()
        creates = cam.operations["CreatePullPointSubscription"]
        t_drop = time.monotonic()
        assert cluster.drop_subscriptions("lost") == 1
        bad = first(run.reports, failed, SILENCE_S, after=t_drop)
        assert bad is not None, run.reports.values()
        assert "unknown subscription" in bad[1].error_message and "retrying" in bad[1].error_message
        back = first(run.reports, healthy, 10, after=bad[0])
        assert back is not None, run.reports.values()
        assert back[0] - bad[0] >= 0.75, back[0] - bad[0]
        assert cam.operations["CreatePullPointSubscription"] - creates == 1
        assert first(run.events, is_start, 2 * LOOP_S + 1, after=back[0]) is not None
        assert run.runner.resubscriptions == 1


def test_onvif_events_silent_camera_noticed_within_limit_and_resubscribed(cluster: Any) -> None:
    """A camera whose pulls stop answering (the HTTP request stays open) is reported within the silence limit
    (pull timeout + margin) and no sooner than the margin; the loop re-subscribes while it is silent, and the alarm
    becomes events again once the camera answers."""
    cam = cluster.camera("silent")
    with running(cluster, "silent") as run:
        assert first(run.reports, healthy, 15) is not None, run.reports.values()
        creates = cam.operations["CreatePullPointSubscription"]
        t_stall = time.monotonic()
        cluster.stall_events("silent")
        try:
            bad = first(run.reports, failed, SILENCE_S + 5, after=t_stall)
            assert bad is not None, run.reports.values()
            assert "PullMessages" in bad[1].error_message, bad[1].error_message
            noticed = bad[0] - t_stall
            assert SHORT["silence_margin_s"] - 0.2 <= noticed <= SILENCE_S + 1.5, noticed
            assert poll(lambda: cam.operations["CreatePullPointSubscription"] > creates, 10), "never re-subscribed"
        finally:
            cluster.stall_events("silent", False)
        t_clear = time.monotonic()
        assert first(run.events, is_start, 2 * LOOP_S + SILENCE_S + 5, after=t_clear) is not None
        assert run.runner.error is None and run.runner.resubscriptions >= 1


def test_onvif_events_camera_reboot_resubscribes(cluster: Any) -> None:
    """A reboot (services down 1 s, then the clock back at 1970 and no subscriptions) is reported as onvif_error;
    the loop subscribes again with a token for the camera's new clock and the alarm becomes events again."""
    with running(cluster, "reboot") as run:
        assert first(run.reports, healthy, 15) is not None, run.reports.values()
        t_reboot = time.monotonic()
        cluster.inject("reboot", "reboot", down_s=1.0)
        bad = first(run.reports, failed, SILENCE_S + 2, after=t_reboot)
        assert bad is not None, run.reports.values()
        back = first(run.reports, healthy, 15, after=bad[0])
        assert back is not None, run.reports.values()
        assert first(run.events, is_start, 2 * LOOP_S + 1, after=back[0]) is not None
        assert cluster.camera("reboot").camera_now().year == 1970
